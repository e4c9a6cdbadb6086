"""GenAI Factory: turn language models into safe, observable, cost-controlled API products."""

__version__ = "0.1.0"
