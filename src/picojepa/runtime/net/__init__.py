"""The edge network: one member per node, votes gathered over NATS: what crosses the wire (wire),
connections and options (natsconn), a member node (node), the voting coordinator (network), and
local servers and nodes for tests, the bench and the demo (localnet)."""
