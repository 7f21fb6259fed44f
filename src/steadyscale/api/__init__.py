"""The HTTP API ``steadyscale run`` serves (FastAPI on uvicorn, in a thread of the daemon):
demand, nodes, usage, drain, events and the web page. Only ``app`` builds and serves it;
it reaches the cluster through the daemon's ledger and event hooks, never EC2."""
