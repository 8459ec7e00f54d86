"""The local web app (FastAPI on uvicorn): the drawing page, its API, and the reports folder."""
