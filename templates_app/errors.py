from platform_site.errors import Conflict, InvalidRequest, NotFound


class TemplateNotFound(NotFound):
    code = "template_not_found"
    message = "No such agent template"


class TemplateVersionNotFound(NotFound):
    code = "template_version_not_found"
    message = "No such template version"


class TemplateInvalid(InvalidRequest):
    code = "invalid_template"
    message = "Invalid template content"


class TemplateExists(Conflict):
    code = "template_exists"
    message = "A template with this name exists"


class TemplateVersionImmutable(Conflict):
    code = "template_version_immutable"
    message = "Template versions are immutable; create a new version"
