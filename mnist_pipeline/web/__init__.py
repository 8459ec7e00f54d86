"""The local web app (Starlette on uvicorn): for now it serves the reports folder."""
