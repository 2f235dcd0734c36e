"""Simulated customers: a model plays the customer of a scenario, one message at a time.

The model sees the conversation from the customer's side (the bot's replies as the other party's
messages) and its instructions; it ends the conversation by writing `###STOP###` (as τ²-bench's
user simulator does), also when the bot hands it to a human.
"""

from __future__ import annotations

from glm_agent.messages import AssistantMessage, Message, SystemMessage, UserMessage
from glm_agent.models.base import ChatModel

__all__ = ["STOP", "SimulatedUser", "user_instructions"]

STOP = "###STOP###"
"""What the simulated customer writes to end the conversation."""
_ENDINGS = (STOP, "###TRANSFER###", "###OUT-OF-SCOPE###")
OPENING = "Hello! How can I help you today?"
"""The support side's first words, as the simulated customer sees them."""


def user_instructions(scenario: str) -> str:
    """The simulated customer's system prompt for a scenario."""
    return (
        "You are a customer talking to a company's customer-service assistant. Play the "
        "customer described below, and only them.\n"
        "- Write only the customer's next message: short, natural, one request at a time, in the "
        "language the scenario is written in.\n"
        "- Give only information the scenario gives you, and only when it is asked for or needed. "
        "If asked for something the scenario does not say, say you do not know it.\n"
        "- When the assistant asks you to confirm an action that is what you want, confirm it "
        'with "yes"; otherwise say no.\n'
        f"- When your goal is reached, or it cannot be reached, write only {STOP}.\n\n"
        f"Scenario:\n{scenario}"
    )


class SimulatedUser:
    """A customer played by `model` following `scenario`.

    Args:
        model: The model playing the customer.
        scenario: Who they are, what they want and know.
        first_message: A fixed opening message (the model writes it otherwise).
    """

    def __init__(self, model: ChatModel, scenario: str, first_message: str | None = None) -> None:
        self.model = model
        self.scenario = scenario
        self.first_message = first_message

    async def next(self, transcript: list[tuple[str, str]]) -> str | None:
        """The customer's next message, or None when they end the conversation.

        Args:
            transcript: The conversation so far as (`customer` or `bot`, text) pairs.
        """
        if not transcript and self.first_message:
            return self.first_message
        messages: list[Message] = [
            SystemMessage(content=user_instructions(self.scenario)),
            UserMessage(content=OPENING),
        ]
        for role, text in transcript:
            if role == "customer":
                messages.append(AssistantMessage(content=text))
            elif isinstance(messages[-1], UserMessage):  # several bot replies in one turn
                messages[-1] = UserMessage(content=messages[-1].text + "\n\n" + text)
            else:
                messages.append(UserMessage(content=text))
        response = await self.model.request(messages)
        text = (response.message.content or "").strip()
        if not text or any(end in text for end in _ENDINGS):
            return None
        return text
