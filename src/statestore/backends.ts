// Registers the non-file state-store backends. Imported once by the agent's run.
