"""Physics of the simulated lab: furnace plant, films, optics. Pure, clock-free."""
