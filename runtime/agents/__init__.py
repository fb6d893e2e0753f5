"""Agent kinds (``runtime.agents.kinds.AGENT_KINDS`` maps a template's ``agent_kind`` to a class)."""
