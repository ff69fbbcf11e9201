"""The 'blender-bake' job type: bake a .blend's simulations to caches next to it, in parallel.

    bake-prepare --> bake-1-of-N --+
                 --> bake-2-of-N --+--> bake-finish
                 --> ...         --+

* 'bake-prepare' frees old bakes, turns the point caches (cloth, soft body,
  particles, dynamic paint) into disk caches with fixed file names, points
  fluid domains at '//cache_fluid_<object>', and saves the .blend;
* 'bake-k-of-N' bakes the k-th share of the simulated objects (dealt out
  round-robin in name order) in a private copy of the .blend, muting the
  simulations its objects cannot depend on, and leaves the cache files in a
  staging directory;
* 'bake-finish' checks every frame is there, marks the disk caches baked,
  moves the files into `blendcache_<blend name>/`, bakes the rigid body world
  (Blender keeps that cache inside the .blend, it cannot be split off or put on
  disk) and saves the .blend.

A `blender-render` job of the same .blend that lists this job in `depends_on`
then renders from the bake. What runs in Blender, and why the steps are cut
this way, is in worker/commands/bake_script.py.

The Server does not read .blend files, so it does not know how many simulated
objects there are: `parts` tasks are made, and a part with no object to bake
finishes in the time Blender takes to start.

Upload mode (no shared disk): the .blend is one of the job's files and the bake
happens in the job's tree on each worker. The saved .blend, the staged cache
files and fluid caches travel through the Manager from task to task; the
finished bake (the .blend, `blendcache_<name>/`, fluid caches) is the job's
output, which a render job that depends on this one finds at its Manager (or
the Server) and lays over its own files.
"""

from __future__ import annotations

from shared.frames import parse_frames

from .base import CompileContext, JobType, Setting, SettingError, TaskSpec, command, register_compiler

CACHE_TYPES = ("cloth", "soft_body", "particles", "dynamic_paint", "rigid_body", "fluid")
MAX_PARTS = 32
BAKE_TASK_TYPE = "blender-bake"
"""Every worker takes it by default; leave it out of a worker's task types to keep bakes off it."""


@register_compiler("blender-bake")
class BlenderBake(JobType):
    label = "Simulation bake"
    description = ("Bakes the simulations of a .blend (cloth, soft body, particles, dynamic paint, rigid body, "
                   "fluid) to caches next to it, several objects in parallel, for a render job to use.")
    settings_schema = [
        Setting("filepath", "path", required=True, label="Blend file",
                description="The .blend file; the bake is saved into it and next to it "
                            "(blendcache_<name>/, cache_fluid_<object>/)."),
        Setting("frames", "frames", label="Frames",
                description="The frames a render will need, e.g. '1-250': caches are baked from their own start "
                            "up to the last of these frames (never beyond their own end). Empty: each cache's "
                            "own range."),
        Setting("parts", "integer", default=2, minimum=1, maximum=MAX_PARTS, label="Parallel tasks",
                description="Bake tasks that run in parallel; the simulated objects are dealt out over them in "
                            "name order. More tasks than simulated objects only add idle tasks."),
        Setting("cache_types", "list", default=list(CACHE_TYPES), label="Cache types",
                description="What to bake, of: " + ", ".join(CACHE_TYPES) + "."),
        Setting("objects", "list", label="Objects",
                description="Bake only these objects' caches (the rigid body world is baked whenever "
                            "'rigid_body' is among the cache types). Empty: every object in the view layer."),
        Setting("mute_unrelated", "boolean", default=True, label="Mute unrelated simulations",
                description="In each task, do not evaluate simulations that cannot affect its objects (those "
                            "that are no collider, force field, dynamic paint brush or fluid flow/effector, and "
                            "that no other object uses). Off: every task evaluates the whole scene."),
        Setting("blender_cmd", "string", default="{blender}", label="Blender command",
                description="The Blender executable; '{blender}' is set per platform by the Manager."),
    ]

    def task_types(self, settings, ctx: CompileContext):
        return {BAKE_TASK_TYPE}

    def check(self, settings, ctx: CompileContext):
        if not settings["filepath"].lower().endswith(".blend"):
            raise SettingError("filepath", f"'{settings['filepath']}' is not a .blend file")
        ctx.job_file("filepath", settings["filepath"])
        types = settings["cache_types"]
        unknown = [t for t in types if t not in CACHE_TYPES]
        if unknown:
            raise SettingError("cache_types", f"unknown {', '.join(unknown)}; known are {', '.join(CACHE_TYPES)}")
        if not types:
            raise SettingError("cache_types", "may not be empty")
        if len(set(types)) != len(types):
            raise SettingError("cache_types", "lists a type twice")
        objects = settings.get("objects") or []
        if any(not name.strip() for name in objects):
            raise SettingError("objects", "may not contain empty names")

    def compile(self, settings, ctx: CompileContext) -> list[TaskSpec]:
        blend = ctx.job_file("filepath", settings["filepath"])
        common = {"blender_cmd": settings["blender_cmd"], "filepath": blend,
                  "cache_types": list(settings["cache_types"]), "objects": list(settings.get("objects") or [])
                  or None, "mute_unrelated": settings["mute_unrelated"]}
        if settings.get("frames"):
            common["frame_end"] = parse_frames(settings["frames"], ctx.max_frames)[-1]
        parts = settings["parts"]
        # Upload mode: the prepared .blend is only for the parts and the finish (scratch; the cache
        # file Blender writes for the current frame when prepare turns a disk cache on is not
        # wanted: finish replaces it). A part's staged cache files and fluid caches go on to the
        # Server at once, as the finished bake keeps them (under blendcache_<name>/ then, the same
        # bytes). '' is the whole job tree: the Server cannot know the fluid cache folders, which
        # Blender names after objects.
        relpath = ctx.relpath("filepath", settings["filepath"]) if ctx.upload else ""
        io = (lambda **kw: kw) if ctx.upload else (lambda **kw: {})
        prepare = TaskSpec("bake-prepare", BAKE_TASK_TYPE, [command("blender_bake", action="prepare", **common)],
                           **io(outputs=[relpath], scratch=True))
        bakes = [TaskSpec(f"bake-{k}-of-{parts}", BAKE_TASK_TYPE,
                          [command("blender_bake", action="bake", part=k, parts=parts, **common)],
                          parents=[prepare], **io(inputs=[relpath], outputs=[""]))
                 for k in range(1, parts + 1)]
        finish = TaskSpec("bake-finish", BAKE_TASK_TYPE, [command("blender_bake", action="finish", **common)],
                          parents=bakes, **io(inputs=[""], outputs=[""]))
        return [prepare, *bakes, finish]
