"""What the customer reads: one language per reply, per-tool templates, whole sentences.

Used by the support pipeline (confirmations, tool outcomes it reports itself) and by the offline
model. A tool's `ToolDefinition.templates` maps a situation (`confirm`, `done`, `declined`,
`refused.<code>`, `label.<value>`) to a sentence per language with `{field}`s from the call's
arguments and result; `label.<value>` entries translate values (`shipped` → `已发货`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from glm_agent.messages import SystemMessage, ToolDefinition, ToolMessage, UserMessage

__all__ = [
    "GENERIC",
    "cited_passages",
    "language_of",
    "outcome_text",
    "render",
    "whole_sentences",
]

_CJK = re.compile(r"[\u3400-\u9fff]")
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;])|(?<=\.)(?=\s|$)")

GENERIC: dict[str, dict[str, str]] = {
    "confirm": {
        "zh": "请确认是否办理：{action}。回复“确认”继续，回复“取消”则不办理。",
        "en": 'Please confirm: {action}. Reply "yes" to go ahead or "no" to cancel.',
    },
    "declined": {"zh": "好的，已取消该操作。", "en": "OK, I have not done it."},
    "done": {"zh": "已办理完成。", "en": "Done."},
    "failed": {
        "zh": "抱歉，系统暂时无法完成这个操作，请稍后再试，或回复“人工”转人工客服。",
        "en": 'Sorry, I could not do that just now. Please try again later, or type "human" for a '
        "person.",
    },
    "refused": {
        "zh": "抱歉，这个请求目前无法办理。",
        "en": "Sorry, I can't do that for this request.",
    },
    "refused.identity_required": {
        "zh": "为保护您的账户安全，请先核实身份。",
        "en": "To protect your account, I need to verify who you are first.",
    },
    "refused.not_found_for_customer": {
        "zh": "在您的账户下没有找到这笔订单，请核对订单号。",
        "en": "I could not find that order on your account. Please check the number.",
    },
    "refused.limit_reached": {
        "zh": "这个操作今天的次数已达上限，如需帮助请转人工客服。",
        "en": "That has been done as often as allowed for now; a human agent can help further.",
    },
    "refused.not_allowed": {
        "zh": "抱歉，这个请求不符合我们的规定，无法办理。",
        "en": "Sorry, that request is outside what our policy allows.",
    },
    "refused.needs_review": {
        "zh": "这个请求需要同事人工审核，我为您转接人工客服。",
        "en": "A colleague needs to review this request, so I'm passing you to a human agent.",
    },
}


_NOT_WORDS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\S*\d\S*")
"""E-mail addresses and tokens with digits (order numbers, phones, SKUs): they name things
in any language, so they do not decide one."""


def language_of(text: str, default: str = "zh") -> str:
    """`zh` when the text has Chinese characters, `en` when it has English words, else
    `default` (a message of only an order number and a phone number keeps the conversation's
    language)."""
    if _CJK.search(text):
        return "zh"
    if re.search(r"[A-Za-z]{2,}", _NOT_WORDS.sub(" ", text)):
        return "en"
    return default


class _Values(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _show(value: Any, lang: str, labels: Mapping[str, Mapping[str, str]]) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, list):
        sep = "；" if lang == "zh" else "; "
        return sep.join(_show(v, lang, labels) for v in value)
    if isinstance(value, dict):
        sep = "，" if lang == "zh" else ", "
        return sep.join(_show(v, lang, labels) for v in value.values())
    text = str(value)
    return labels.get("label." + text, {}).get(lang, text)


def render(
    templates: Mapping[str, Mapping[str, str]],
    situation: str,
    lang: str,
    values: Mapping[str, Any],
) -> str | None:
    """The `situation` sentence in `lang` with `values` filled in (None when there is none).

    Values are shown in the customer's language: `label.<value>` entries translate them,
    lists and objects become short enumerations, whole-number floats lose their `.0`.
    """
    by_lang = templates.get(situation)
    if not by_lang:
        return None
    text = by_lang.get(lang) or next(iter(by_lang.values()))
    shown = _Values({k: _show(v, lang, templates) for k, v in values.items()})
    try:
        return text.format_map(shown)
    except (ValueError, IndexError):  # a stray brace in a template: show it as written
        return text


def _action(definition: ToolDefinition | None, name: str, args: Mapping[str, Any]) -> str:
    what = (definition.description if definition else "").split("\n")[0].split(" (")[0]
    what = what.rstrip(".") or name.replace("_", " ")
    what = what[:1].lower() + what[1:] if what[1:2].islower() else what
    ids = [str(v) for v in args.values() if isinstance(v, str) and re.search(r"\d", v)]
    return what + (f" ({', '.join(ids)})" if ids else "")


def outcome_text(
    definition: ToolDefinition | None,
    name: str,
    situation: str,
    lang: str,
    args: Mapping[str, Any],
    result: str | Mapping[str, Any] | None = None,
) -> str:
    """A customer-facing sentence for a tool `situation` (`confirm`, `done`, `declined`,
    `refused`, `failed`): the tool's template, else a generic sentence in `lang`.

    For `refused` the result's `error` code picks `refused.<code>`; the result's fields (and
    a rule's `say`) fill it in.
    """
    data: dict[str, Any] = {}
    if isinstance(result, str):
        try:
            loaded = json.loads(result)
            data = loaded if isinstance(loaded, dict) else {"result": loaded}
        except ValueError:
            data = {}
    elif isinstance(result, Mapping):
        data = dict(result)
    key = situation
    if situation == "refused" and data.get("error"):
        key = f"refused.{data['error']}"
        say = data.get("say")
        if isinstance(say, dict) and (say.get(lang) or say.get("text")):
            return str(say.get(lang) or say.get("text"))
    values = {**args, **data, "action": _action(definition, name, args)}
    templates = definition.templates if definition else {}
    for candidate in (key, situation):
        text = render(templates, candidate, lang, values)
        if text is None:
            text = render(GENERIC, candidate, lang, values)
        if text is not None:
            return text
    return render(GENERIC, "refused", lang, values) or ""


def whole_sentences(text: str, limit: int | None = None) -> str:
    """`text` cut at its last complete sentence (within `limit` characters when given).

    Used where a reply may have been cut short: a passage trimmed to length, a model answer
    that hit its token limit. Text with no sentence end at all is returned as it is.
    """
    text = text.strip()
    if limit is not None and len(text) > limit:
        text = text[:limit]
    elif limit is not None:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if m.end() > 0]
    if not ends:
        return text
    return text[: ends[-1]].strip()


_LABEL = re.compile(r"\n\[(\d+)\] ([^\n]*)")
_CITE = re.compile(r"\[(\d+)\]")


def cited_passages(messages: list[Any], answer: str) -> list[dict[str, Any]]:
    """{n, title, source} of the retrieved passages the answer cites as [n] (the passages of
    the last turn's question)."""
    last = max((i for i, m in enumerate(messages) if isinstance(m, UserMessage)), default=0)
    texts = (
        m.content if isinstance(m, SystemMessage) else m.text
        for m in reversed(messages[max(0, last - 1) :])
        if isinstance(m, SystemMessage | ToolMessage)
    )
    context = next((t for t in texts if "<context>" in t), "")
    labels = dict(_LABEL.findall(context))
    out = []
    for n in dict.fromkeys(_CITE.findall(answer)):
        if n in labels:
            title, _, where = labels[n].partition(" (")
            source = where.split(",")[0].rstrip(")")
            out.append({"n": int(n), "title": title, "source": source.rsplit("/", 1)[-1]})
    return out
