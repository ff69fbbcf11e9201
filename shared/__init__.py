"""Code common to the Server, Manager, Worker and add-on: statuses, frame ranges,
path variables, wire documents. Nothing here imports bottle, peewee or bpy."""
