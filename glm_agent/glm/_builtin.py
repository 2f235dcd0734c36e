"""glm-4-9b-chat's built-in tools: `python` (a code cell) and `simple_browser` (search/open).

The model writes these calls not as JSON but in their own syntax after the tool name:

- `python\\n```python\\n<code>\\n```` → arguments `{"code": "<code>"}`;
- `simple_browser\\nsearch("query", recency_days=7)` → `{"action": "search", "query": ...,
  "recency_days": 7}`; `mclick([1, 2])` → `{"action": "mclick", "ids": [1, 2]}`;
  `open_url("https://...")` → `{"action": "open_url", "url": "https://..."}`.

Arguments must be literals; anything else is not a call (the text stays content). A tool
named `python` or `simple_browser` among the tools turns these on; its arguments given as a
JSON object are read as for any tool.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

__all__ = ["BROWSER_TOOL", "PYTHON_TOOL", "decode_builtin", "encode_builtin"]

PYTHON_TOOL = "python"
BROWSER_TOOL = "simple_browser"

# Parameter names of each browser action, in positional order.
_BROWSER_ACTIONS: dict[str, tuple[str, ...]] = {
    "search": ("query", "recency_days"),
    "mclick": ("ids",),
    "open_url": ("url",),
}
_FENCE = re.compile(r"```[^\n`]*\n(.*)```", re.S)

# The descriptions glm-4-9b-chat's template prints for the built-in tools.
PYTHON_BLOCK = (
    "\n## python\n\n当你向 `python` 发送包含 Python 代码的消息时，该代码将会在一个有状态的 "
    "Jupyter notebook 环境中执行。\n`python` 返回代码执行的输出，或在执行 60 秒后返回超时。\n"
    "`/mnt/data` 将会持久化存储你的文件。在此会话中，`python` 无法访问互联网。不要使用 "
    "`python` 进行任何网络请求或者在线 API 调用，这些在线内容的访问将不会成功。"
)
BROWSER_BLOCK = (
    "\n## simple_browser\n\n你可以使用 `simple_browser` 工具。该工具支持以下函数：\n"
    "`search(query: str, recency_days: int)`：使用搜索引擎进行查询并显示结果，可以使用 "
    "`recency_days` 参数控制搜索内容的时效性。\n"
    "`mclick(ids: list[int])`：获取一系列指定 id 的页面内容。每次调用时，须选择3-10个页面。"
    "选择多个角度的页面，同时尽可能选择可信任的信息来源。考虑到部分页面是无法加载的，"
    "你也可以多打开一些可能有用的页面而不用担心内容过多。\n"
    "`open_url(url: str)`：打开指定的 URL。\n\n使用 `【{引用 id}†{引用文本}】` 来引用内容。\n\n"
    "操作步骤：1. 使用 `search` 来获得信息列表; 2. 使用 `mclick` 来获取指定 ID 页面的内容; "
    "3. 根据获得的内容进行回复。在回复中应当引用信息来源。\n 如果用户提供了 URL，也可以用 "
    "`open_url` 直接打开页面。\n如果初次搜索结果没有找到合适的信息，也可以再次使用 `search` "
    "进行搜索。"
)


def decode_builtin(name: str, body: str) -> dict[str, Any] | None:
    """Arguments of a built-in call written in its own syntax (`body` stripped), or None."""
    if name == PYTHON_TOOL:
        m = _FENCE.fullmatch(body)
        if m is None:
            return None
        code = m.group(1)
        return {"code": code[:-1] if code.endswith("\n") else code}
    if name == BROWSER_TOOL:
        return _decode_browser(body)
    return None


def _decode_browser(body: str) -> dict[str, Any] | None:
    try:
        node = ast.parse(body, mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    params = _BROWSER_ACTIONS.get(node.func.id)
    if params is None or len(node.args) > len(params):
        return None
    out: dict[str, Any] = {"action": node.func.id}
    try:
        for pname, arg in zip(params, node.args, strict=False):
            out[pname] = ast.literal_eval(arg)
        for kw in node.keywords:
            if kw.arg not in params or kw.arg in out:
                return None
            out[kw.arg] = ast.literal_eval(kw.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if params[0] not in out or isinstance(out[params[0]], tuple):
        return None
    return out


def encode_builtin(name: str, args: dict[str, Any]) -> str | None:
    """The built-in syntax for a call, or None when `args` do not fit it (use JSON then)."""
    if name == PYTHON_TOOL:
        code = args.get("code")
        if set(args) != {"code"} or not isinstance(code, str):
            return None
        return f"```python\n{code}\n```"
    if name == BROWSER_TOOL:
        params = _BROWSER_ACTIONS.get(args.get("action"))  # type: ignore[arg-type]
        if params is None or not set(args) - {"action"} <= set(params) or params[0] not in args:
            return None
        parts = [_literal(args[params[0]])]
        parts += [f"{p}={_literal(args[p])}" for p in params[1:] if p in args]
        return f"{args['action']}({', '.join(parts)})"
    return None


def _literal(value: Any) -> str:
    # JSON string escapes are valid Python; other values need Python's spelling (True, None).
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)
