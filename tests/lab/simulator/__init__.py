"""The lab's simulator: plays kata-deploy, the GPU Operator and the Kata runtime.

`hoststate` reads a simulated host's tree, `logic` turns (cluster state, host state) into
what real components would do (pure functions), `hostwrite` applies the few host changes
the real components make, and `runner` watches the API server and writes the outcome.
"""
