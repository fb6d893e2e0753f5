from platform_site.errors import Conflict, NotFound


class SessionNotFound(NotFound):
    code = "session_not_found"
    message = "No such session"


class SessionNotWaiting(Conflict):
    code = "session_not_waiting"
    message = "The session is not waiting for clarification"


class SessionBusy(Conflict):
    code = "session_busy"
    message = "The session is running"
