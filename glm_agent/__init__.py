"""glm-agent."""
