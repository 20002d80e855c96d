"""Model families by name, each with its preprocessing beside it."""
