"""What happened, kept: the events and attempts tables (``events``) and the champion history
(``champion_history``)."""
