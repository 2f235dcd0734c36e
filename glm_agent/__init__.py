"""glm-agent: tool-using, retrieval-augmented agents on GLM models.

```python
from glm_agent import Agent, tool

@tool
def order_status(order_id: str) -> dict:
    '''Look up an order.

    Args:
        order_id: The order number printed on the receipt.
    '''
    ...

agent = Agent(model="vllm:http://gpu-host:8000/v1#glm-4.5-air", tools=[order_status])
print(agent.run("Where is my order A-1042?").output)
```
"""

from glm_agent.agent import Agent
from glm_agent.approval import Approval, Approved, Deferred, Rejected
from glm_agent.exceptions import (
    GlmAgentError,
    ModelRetry,
    RunError,
    UserError,
)
from glm_agent.messages import (
    AssistantMessage,
    ImagePart,
    Message,
    ModelResponse,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolDefinition,
    ToolMessage,
    Usage,
    UserMessage,
    VideoPart,
)
from glm_agent.models import ChatModel
from glm_agent.models.function import AgentInfo, FunctionModel
from glm_agent.models.test import TestModel
from glm_agent.results import AgentStreamEvent, RunDone, RunResult, UsageLimits
from glm_agent.settings import ModelSettings
from glm_agent.tools import RunContext, Tool, ToolPolicy, ToolRegistry, tool

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentInfo",
    "AgentStreamEvent",
    "Approval",
    "Approved",
    "AssistantMessage",
    "ChatModel",
    "Deferred",
    "FunctionModel",
    "GlmAgentError",
    "ImagePart",
    "Message",
    "ModelResponse",
    "ModelRetry",
    "ModelSettings",
    "Rejected",
    "RunContext",
    "RunDone",
    "RunError",
    "RunResult",
    "SystemMessage",
    "TestModel",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolDefinition",
    "ToolMessage",
    "ToolPolicy",
    "ToolRegistry",
    "Usage",
    "UsageLimits",
    "UserError",
    "UserMessage",
    "VideoPart",
    "__version__",
    "tool",
]
