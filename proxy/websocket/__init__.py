"""WebSocket upgrades and the tunnels that splice an upgraded connection to its upstream."""
