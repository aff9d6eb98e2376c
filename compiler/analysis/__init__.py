"""The reference semantics and what stands on it: reach, explain (later lint, verify,
compare, diff). Independent of the backends it judges."""
