"""The Flamenco Worker daemon: fetches tasks from its Manager and runs their commands.

Imports shared/ and third-party libraries only, never backend/.
"""
