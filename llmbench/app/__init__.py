"""The LoRA Land web app (`llmbench app`): each fine-tuned adapter beside its base model.

catalog.py gathers what the page shows, stream.py talks to the endpoint, web.py serves the
page (static/: plain HTML, CSS and JavaScript, nothing from the internet) and its API.
"""
