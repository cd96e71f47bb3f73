"""The Gateway API controller: followers, the planner from graylane.gateway, and one writer."""
