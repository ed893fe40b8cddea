"""The engine: the campaign, one iteration, the schedule, replay, and the parts they are built from."""
