"""The allocator: subnets and VNIs for networks, VIPs and published ports for
services, addresses for tasks and nodes. `ipam` decides over plain values;
the other modules read the store to find what is taken and apply decisions
inside the caller's transaction."""
