"""The latent-space explorer: drag anchors over a map of the latent space and watch decoded images,
interpolations and traversals change, through an ONNX decoder (torch-free on that path).

- :class:`~explorer.latent.model.LatentSpace`: the state (decoder, points, projection, anchors).
- :class:`~explorer.latent.widget.LatentExplorerWidget`: every view of one space.
- :class:`~explorer.latent.panel.LatentExplorerPanel`: the app's dock: opens decoders, follows
  the current run, exports and encodes in the background.

Nothing is imported here, so importing a submodule stays cheap.
"""
