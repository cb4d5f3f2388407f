"""LangChain tools over ImagineService (reached as ``imagine_agent.tools``)."""
