"""Job-type documents in the shape GET /api/job-types answers with (see backend/server/compilers)."""

RENDER = {
    "name": "blender-render", "label": "Blender render", "description": "Renders frames in chunks.",
    "settings": [
        {"key": "filepath", "type": "path", "default": None, "required": True, "choices": None,
         "label": "Blend file", "description": ""},
        {"key": "frames", "type": "frames", "default": None, "required": True, "choices": None,
         "label": "Frames", "description": ""},
        {"key": "chunk_size", "type": "integer", "default": 1, "required": False, "choices": None,
         "label": "Chunk size", "description": "", "minimum": 1},
        {"key": "render_output", "type": "path", "default": None, "required": True, "choices": None,
         "label": "Render output", "description": ""},
        {"key": "format", "type": "choice", "default": None, "required": False,
         "choices": ["PNG", "JPEG", "OPEN_EXR"], "label": "File format", "description": ""},
        {"key": "blender_cmd", "type": "string", "default": "{blender}", "required": False, "choices": None,
         "label": "Blender command", "description": ""},
        {"key": "create_video", "type": "boolean", "default": False, "required": False, "choices": None,
         "label": "Create video", "description": ""},
        {"key": "fps", "type": "number", "default": None, "required": False, "choices": None,
         "label": "Frames per second", "description": "", "minimum": 0.001},
        {"key": "output_file_extension", "type": "string", "default": None, "required": False,
         "choices": None, "label": "Image extension", "description": ""},
        {"key": "images_or_video", "type": "choice", "default": "images", "required": False,
         "choices": ["images", "video"], "label": "Images or video", "description": ""},
        {"key": "rna_overrides", "type": "list", "default": None, "required": False, "choices": None,
         "label": "Overrides", "description": "Python lines run before rendering"},
        {"key": "samples", "type": "integer", "default": 16, "required": False, "choices": None,
         "label": "Samples", "description": "", "minimum": 1, "maximum": 4096},
        {"key": "quality", "type": "choice", "default": "high", "required": False,
         "choices": ["low", "high"], "label": "Quality", "description": ""},
    ],
}

BAKE = {
    "name": "blender-bake", "label": "Simulation bake", "description": "Bakes point caches.",
    "settings": [
        {"key": "filepath", "type": "path", "default": None, "required": True, "choices": None,
         "label": "Blend file", "description": ""},
        {"key": "frames", "type": "frames", "default": None, "required": False, "choices": None,
         "label": "Frames", "description": ""},
    ],
}

SLEEP = {
    "name": "sleep", "label": "Sleep", "description": "Sleeps.",
    "settings": [
        {"key": "frames", "type": "frames", "default": None, "required": True, "choices": None,
         "label": "Frames", "description": ""},
        {"key": "chunk_size", "type": "integer", "default": 1, "required": False, "choices": None,
         "label": "Chunk size", "description": ""},
        {"key": "time_in_seconds", "type": "number", "default": 1, "required": False, "choices": None,
         "label": "Seconds", "description": ""},
    ],
}

ALL = [RENDER, BAKE, SLEEP]
