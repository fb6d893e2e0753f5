"""Default catalog and templates, so a fresh install serves something useful.

Tools are (re)written from their python classes (idempotent, by name); a
template is created only when missing — versions edited by users are kept.
"""

from __future__ import annotations

from django.db import transaction

from catalog.models import Tool
from catalog.services import tool_create, tool_update
from retrieval.directory import directory_refresh
from runtime.tools.base import BaseTool
from runtime.tools.standard import STANDARD_TOOLS
from runtime.tools.system import SYSTEM_TOOLS
from templates_app.models import AgentTemplate
from templates_app.services import template_create

RESEARCH_TOOLS = [t.tool_name for t in STANDARD_TOOLS]

DEFAULT_TEMPLATES: dict[str, dict] = {
    "sgr_agent": {
        "agent_kind": "sgr",
        "description": "General assistant for everyday questions: quick facts, explanations, "
        "calculations, translations, advice and small talk. Универсальный помощник: ответы на вопросы, "
        "расчёты, переводы, объяснения.",
        "tags": ["general", "sgr"],
        "examples": ["what is the capital of Australia?", "сколько дней в високосном году?",
                     "explain what an API is in simple words", "переведи фразу на французский",
                     "how many grams are in a pound?", "посоветуй, как быстрее заснуть",
                     "hello!", "что такое инфляция?"],
        "tool_policy": {"allowlist": RESEARCH_TOOLS, "max_tools_in_prompt": 10},
    },
    "tool_calling_agent": {
        "agent_kind": "tool_calling",
        "description": "General assistant using plain function calling (no separate reasoning step).",
        "tags": ["general"],
        "tool_policy": {"allowlist": RESEARCH_TOOLS, "max_tools_in_prompt": 10},
    },
    "writer_agent": {
        "agent_kind": "sgr_tool_calling",
        "description": "Writes texts: essays, articles, posts, letters, summaries and stories, in the "
        "requested style and language. Пишет тексты: эссе, статьи, посты, письма, рассказы.",
        "tags": ["writing", "essay", "article", "text", "эссе", "статья", "текст"],
        "examples": ["write an essay about the history of tea", "напиши эссе о русской литературе",
                     "draft a blog post about remote work", "напиши письмо клиенту",
                     "compose a speech for a wedding toast", "сочини стихотворение о море",
                     "write a short story for children", "придумай текст рекламного объявления",
                     "edit and improve the style of this paragraph", "напиши статью для корпоративного блога"],
        "execution_policy": {"max_iterations": 6, "max_searches": 0, "max_clarifications": 1},
        "tool_policy": {"allowlist": ["generate_plan_tool", "create_report_tool"], "max_tools_in_prompt": 6},
    },
    "orchestrator_agent": {
        "agent_kind": "sgr_tool_calling",
        "description": "Coordinates other agents: splits a complex request, delegates research and "
        "writing to specialised agents and combines their results. Координирует других агентов.",
        "tags": ["orchestration", "delegation", "multi-agent"],
        "examples": ["research this topic and then write an article about it",
                     "найди информацию и подготовь по ней текст",
                     "first investigate the market, then draft a summary for executives",
                     "поручи одному агенту исследование, а другому — написание отчёта",
                     "combine web research with a well-written essay on the results",
                     "изучи тему и на основе найденного напиши пост"],
        "execution_policy": {"max_iterations": 10, "max_searches": 0, "max_clarifications": 2},
        "tool_policy": {"allowlist": ["ask_research_agent", "ask_writer_agent", "generate_plan_tool"],
                        "max_tools_in_prompt": 8},
    },
    "research_agent": {
        "agent_kind": "sgr_tool_calling",
        "description": "Researches a topic on the web: plans, searches, reads sources and writes a "
        "cited report. Исследует тему: ищет источники в интернете и пишет отчёт со ссылками.",
        "tags": ["research", "web", "report", "ресёрч", "исследование"],
        "examples": ["do some research on solid-state batteries", "сделай ресёрч про рынок электромобилей",
                     "look up recent news about central bank interest rates", "найди статистику продаж смартфонов за год",
                     "compare the features and prices of the top project management tools",
                     "собери источники о вреде сахара и кратко изложи выводы",
                     "what does the scientific literature say about microdosing?",
                     "проанализируй конкурентов сервиса доставки еды"],
        "execution_policy": {"max_iterations": 12, "max_searches": 4, "max_clarifications": 2},
        "tool_policy": {"allowlist": RESEARCH_TOOLS, "max_tools_in_prompt": 10},
    },
}


AGENT_TOOLS = {
    "ask_research_agent": ("research_agent", "Delegate a research task to the research agent: it searches "
                           "the web and returns a cited report."),
    "ask_writer_agent": ("writer_agent", "Delegate a writing task (essay, article, post, letter) to the "
                         "writer agent: it returns the finished text."),
}


def _python_tool_fields(cls: type[BaseTool], module: str) -> dict:
    return {
        "description": cls.description,
        "parameters": cls.parameters_schema(),
        "kind": "python",
        "entrypoint": f"{module}:{cls.__name__}",
        "risk": cls.risk,
        "is_system": cls.is_system,
        "tags": ["system"] if cls.is_system else ["research"],
    }


@transaction.atomic
def load_defaults() -> dict[str, int]:
    created = updated = templates = 0
    for cls in (*SYSTEM_TOOLS, *STANDARD_TOOLS):
        fields = _python_tool_fields(cls, cls.__module__)
        tool = Tool.objects.filter(name=cls.tool_name).first()
        if tool is None:
            tool_create(name=cls.tool_name, **fields)
            created += 1
        elif any(getattr(tool, k) != v for k, v in fields.items() if k != "tags"):
            tool_update(tool=tool, **{k: v for k, v in fields.items() if k != "tags"})
            updated += 1
    for name, (target, description) in AGENT_TOOLS.items():
        if not Tool.objects.filter(name=name).exists():
            tool_create(name=name, description=description, kind="agent", target_template=target,
                        tags=["agent", "delegation"])
            created += 1
    for name, content in DEFAULT_TEMPLATES.items():
        if not AgentTemplate.objects.filter(name=name).exists():
            template_create(name=name, content=content, note="default template")
            templates += 1
    directory_refresh()
    return {"tools_created": created, "tools_updated": updated, "templates_created": templates}
