"""The studio: a web app (Gradio) for reviewers and designers on one workspace."""
