"""The MCP parts stay out of `import glm_agent` and fail with the extra to install."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_glm_agent_does_not_import_the_sdk() -> None:
    out = _run(
        "import sys, glm_agent, glm_agent.tools, glm_agent.serving, glm_agent.agent_config\n"
        "from glm_agent.tools import MCPServer\n"
        "MCPServer('x', command='y')\n"
        "print(sorted(m for m in ('mcp', 'mcp_types', 'starlette', 'httpx2') if m in sys.modules))"
    )
    assert out == "[]"


def test_a_missing_sdk_names_the_extra() -> None:
    out = _run(
        "import asyncio, sys\n"
        "sys.modules['mcp'] = None  # as if not installed\n"
        "from glm_agent.tools import MCPServer\n"
        "try:\n"
        "    asyncio.run(MCPServer('x', command='y').start())\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    assert out == (
        "MissingDependencyError mcp is required for MCP servers; install it with: "
        'pip install "glm-agent[mcp]"'
    )
