"""The suite: one folder per package room, plus end-to-end runs of the pipeline at the top."""
