"""Remote actions: the body contract, vehicle eligibility and the lifecycle that runs them."""
