"""One connection's protocol life: login, the command table, delivery state
(seq, ack, replay, presence pacing), and the hub the connections share."""
