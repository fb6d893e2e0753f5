"""The rules engine as the runtime uses it (the language and evaluation: ``templates_app.rules``).

Rules are evaluated before retrieval (filter), after retrieval (post-filter) and
on state transitions; the limits of the execution policy are generated rules too.
"""

from templates_app.rules import (  # noqa: F401  (re-exported for the runtime)
    Finish,
    KeepOnlyTools,
    RemoveTools,
    RequireTool,
    Rule,
    RuleDecision,
    SetStage,
    apply_rules,
    parse_rules,
    policy_rules,
)
