"""Markdown prompt templates (reached as ``imagine_agent.prompts``)."""
