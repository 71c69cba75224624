"""The pieces of the RAP Space that `rap_hf.demo` serves (`rap-hf demo`, `spaces_demo/app.py`).

- `data`: the scored rows it shows and the model that scored them (`DemoData`), loaded in a thread
  (`Loader`), and a saved selection's own settings.
- `views`: what each tab shows, as plain functions of a `DemoData` (tests call them directly).
- `layout`: the Gradio page, one builder per tab; `events`: its handlers, wired to the components.
"""
