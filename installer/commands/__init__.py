"""The command line and the headless front end: the flags, each command that runs without a
screen (install, uninstall, check, images, troubleshoot, bundle), and SIGTERM handling.
`screens/cli.py`, the composition root, hands it the way to open the wizard.
"""
