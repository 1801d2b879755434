"""`statebridge faults`: the invariants under faults, measured.

Several instances of this statebridge on a private PostgreSQL cluster and a private Redis
(both started here, on loopback ports of their own, and removed afterwards: no shared server
is ever touched), sessions adding to their carts through every instance in turn, and one
fault at a time in the middle of that load. A ledger per cart of acknowledged and unanswered
adds is checked through every instance afterwards. The table says, per fault: runs, adds
acknowledged, lost, invented, 5xx other than the enveloped 503, 401 for a live session, and
the longest time requests kept failing.
"""
