"""Runs inside Blender (`blender -b scene.blend --python bake_script.py -- JSON`): one step of a
simulation bake. Not imported by the worker; `worker/commands/bake.py` runs it.

What Blender allows, and how the three steps use it:

* Point caches (cloth, soft body, particles, dynamic paint vertex surfaces) can
  live on disk, in `blendcache_<blend name>/`, one file per cache and frame,
  named '<cache name or hex of the object name>_<frame:06>_<index:02>.bphys'.
  `bpy.ops.ptcache.bake` / `bake_all` step the whole scene frame by frame, so
  every other simulation is evaluated as well, and an unbaked disk cache writes
  its frames to disk while it is evaluated.
* Toggling `use_disk_cache` (even to the value it has) deletes that cache's
  files, and opening a .blend deletes the files of an unbaked particle disk
  cache after the current frame. So the caches must be flagged baked in the
  saved .blend before their files are put next to it;
  `bpy.ops.ptcache.bake_from_cache` sets the flag without touching files.
* The rigid body world's cache cannot be on disk: it lives in the .blend.
* Fluid (Mantaflow) domains bake to their own cache directory, read back by
  file existence, so they need no flag in the .blend.

prepare  frees old bakes, turns every point cache in scope into a disk cache
         with a fixed file index (so bake and render agree on file names),
         deletes its old files, points fluid domains at '//cache_fluid_<name>'
         (unless their cache is inside the .blend's folder already), optionally
         caps the frame range, and saves the .blend.
bake     (part k of N, several in parallel) deals the simulated objects out
         round-robin by name and bakes its share in a private copy of the .blend
         saved in a scratch directory, so the caches of other objects that it
         has to evaluate never touch the real cache directory; then it moves
         its own objects' files to a staging directory. Simulations that cannot
         influence its objects (no collider, force field, dynamic paint brush,
         fluid flow/effector, and no other ID using the object) are muted in
         that copy, which is where the parallel speed-up comes from. It does
         not save the real .blend. Fluid domains bake straight into their
         cache directory (its relative path is remapped to the real one).
finish   checks that every point cache has its files in staging, marks the disk
         caches baked, moves the files into `blendcache_<name>/`, bakes the
         rigid body world (memory cache, so it is saved in the .blend) and saves
         the .blend: a render job opening it reads the bake.

Lines starting with 'flamenco-bake:' are for the worker's activity; Blender's
own 'bake: frame N :: M' lines give the progress. Failures print 'Error: ...'
and exit with code 3.
"""

import json
import os
import re
import shutil
import sys

import bpy

PREFIX = "flamenco-bake:"
CACHE_TYPES = ("cloth", "soft_body", "particles", "dynamic_paint", "rigid_body", "fluid")
FLUID_CACHE_DIRS = ("config", "data", "noise", "mesh", "particles", "guiding", "script")
SIM_MODIFIERS = {"CLOTH", "SOFT_BODY", "PARTICLE_SYSTEM", "DYNAMIC_PAINT", "FLUID"}
IGNORED_USERS = (bpy.types.Collection, bpy.types.Scene, bpy.types.Screen, bpy.types.WindowManager,
                 bpy.types.WorkSpace)


class BakeError(Exception):
    pass


def say(message):
    print(f"{PREFIX} {message}", flush=True)


class Cache:
    """One thing to bake: a point cache of an object, or a fluid domain."""

    def __init__(self, obj, kind, modifier, point_cache=None, surface=None):
        self.obj = obj
        self.kind = kind
        self.modifier = modifier
        self.point_cache = point_cache
        self.surface = surface

    @property
    def label(self):
        extra = f" surface '{self.surface.name}'" if self.surface else ""
        return f"{self.kind} '{self.modifier.name}'{extra} of '{self.obj.name}'"

    def file_prefix(self):
        pc = self.point_cache
        return pc.name if pc.name else self.obj.name.encode("utf-8").hex().upper()

    def file_pattern(self):
        return re.compile(re.escape(self.file_prefix()) + r"_(\d{6})_" + f"{self.point_cache.index:02d}" +
                          r"\.bphys$")

    def frame_range(self):
        """(start, end) of the simulation, where the cache has one of its own."""
        if self.surface is not None:
            return self.surface.frame_start, self.surface.frame_end
        if self.kind in ("cloth", "soft_body"):
            return self.point_cache.frame_start, self.point_cache.frame_end
        if self.kind == "fluid":
            ds = self.modifier.domain_settings
            return ds.cache_frame_start, ds.cache_frame_end
        return None


def object_caches(obj, types, report=True):
    """The caches of `obj` whose kind is in `types`, in modifier order."""
    found = []
    for md in obj.modifiers:
        if md.type == "CLOTH" and "cloth" in types:
            found.append(Cache(obj, "cloth", md, md.point_cache))
        elif md.type == "SOFT_BODY" and "soft_body" in types:
            found.append(Cache(obj, "soft_body", md, md.point_cache))
        elif md.type == "PARTICLE_SYSTEM" and "particles" in types:
            psys = md.particle_system
            if psys.settings.type == "HAIR" and not psys.use_hair_dynamics:
                continue
            found.append(Cache(obj, "particles", md, psys.point_cache))
        elif md.type == "DYNAMIC_PAINT" and "dynamic_paint" in types and md.canvas_settings is not None:
            for surface in md.canvas_settings.canvas_surfaces:
                if surface.is_active and surface.surface_format == "VERTEX":
                    found.append(Cache(obj, "dynamic_paint", md, surface.point_cache, surface))
                elif surface.is_active and report:
                    say(f"skipping image-sequence surface '{surface.name}' of '{obj.name}': it is baked "
                        "with the dynamic paint bake, not as a point cache")
        elif md.type == "FLUID" and "fluid" in types and md.fluid_type == "DOMAIN":
            found.append(Cache(obj, "fluid", md))
    kept = []
    for cache in found:
        if cache.point_cache is not None and cache.point_cache.use_external:
            if report:
                say(f"skipping the {cache.label}: it reads an external cache")
        elif not cache.modifier.show_viewport:
            if report:
                say(f"skipping the {cache.label}: its modifier is off in the viewport, where bakes evaluate")
        else:
            kept.append(cache)
    return kept


def scope(args):
    """[(object, [caches])] sorted by object name: the objects this job bakes (rigid body aside)."""
    types = set(args.get("cache_types") or CACHE_TYPES)
    names = args.get("objects") or []
    layer_objects = {o.name: o for o in bpy.context.view_layer.objects}
    missing = [n for n in names if n not in layer_objects]
    if missing:
        raise BakeError(f"no object(s) {', '.join(missing)} in view layer '{bpy.context.view_layer.name}'")
    out = []
    for name in sorted(names or layer_objects):
        obj = layer_objects[name]
        caches = object_caches(obj, types)
        if not caches:
            continue
        if obj.hide_viewport:
            say(f"skipping '{obj.name}': it is disabled in viewports, where bakes evaluate")
            continue
        if obj.library is not None:
            say(f"skipping linked object '{obj.name}' (from {obj.library.filepath}): make it local or a "
                "library override to bake it")
            continue
        out.append((obj, caches))
    return out


def rigid_body_world(args):
    rbw = bpy.context.scene.rigidbody_world
    types = set(args.get("cache_types") or CACHE_TYPES)
    if "rigid_body" not in types or rbw is None or not rbw.enabled or rbw.collection is None:
        return None
    if not rbw.collection.all_objects:
        return None
    return rbw


def override(**kw):
    return bpy.context.temp_override(**kw)


def cache_dir():
    path = bpy.data.filepath
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(os.path.dirname(path), "blendcache_" + stem)


def staging_dir():
    """Where the parts leave their files until the finishing step puts them in place."""
    path = bpy.data.filepath
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join(os.path.dirname(path), f".flamenco-bake-{stem}", "baked")


def cache_files(directory, cache):
    """{frame: filename} of `cache` in `directory`."""
    if not os.path.isdir(directory):
        return {}
    pattern = cache.file_pattern()
    out = {}
    for name in os.listdir(directory):
        m = pattern.match(name)
        if m:
            out[int(m.group(1))] = name
    return out


def remove_cache_files(directory, cache):
    for name in cache_files(directory, cache).values():
        os.remove(os.path.join(directory, name))


def safe_name(name):
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "domain"


# --- prepare ---------------------------------------------------------------------

def prepare(args):
    objects = scope(args)
    frame_end = args.get("frame_end")
    names_seen = {}
    for obj, caches in objects:
        used = {c.point_cache.index for c in caches if c.point_cache is not None and c.point_cache.index >= 0}
        for cache in caches:
            if cache.kind == "fluid":
                prepare_fluid(cache, frame_end)
                continue
            pc = cache.point_cache
            if pc.is_baked:
                with override(point_cache=pc):
                    bpy.ops.ptcache.free_bake()
            if not pc.use_disk_cache:
                pc.use_disk_cache = True  # Blender deletes the cache's old disk files when this changes
            if pc.index < 0:
                index = min(set(range(len(used) + 1)) - used)
                pc.index = index
                used.add(index)
            key = (cache.file_prefix(), pc.index)
            if key in names_seen:
                raise BakeError(f"the {cache.label} and the {names_seen[key]} would write the same cache files "
                                f"('{key[0]}_*_{key[1]:02d}.bphys'); give one of the caches another name")
            names_seen[key] = cache.label
            if frame_end is not None:
                if cache.surface is not None:
                    cache.surface.frame_end = max(cache.surface.frame_start, min(cache.surface.frame_end, frame_end))
                elif cache.kind in ("cloth", "soft_body"):
                    pc.frame_end = max(pc.frame_start, min(pc.frame_end, frame_end))
            remove_cache_files(cache_dir(), cache)
            say(f"prepared {cache.label}: disk cache, file index {pc.index}, frames {cache.frame_range() or 'auto'}")
    rbw = rigid_body_world(args)
    if rbw is not None:
        pc = rbw.point_cache
        if pc.is_baked:
            with override(point_cache=pc):
                bpy.ops.ptcache.free_bake()
        if frame_end is not None:
            pc.frame_end = max(pc.frame_start, min(pc.frame_end, frame_end))
        say(f"prepared the rigid body world: frames {pc.frame_start}-{pc.frame_end}, baked in the finishing step")
    if not objects and rbw is None:
        say("nothing to bake: no simulation caches in scope")
    shutil.rmtree(os.path.dirname(staging_dir()), ignore_errors=True)
    bpy.ops.wm.save_mainfile()
    say(f"saved {bpy.data.filepath}")


def prepare_fluid(cache, frame_end):
    ds = cache.modifier.domain_settings
    inside = ds.cache_directory.startswith("//") and ".." not in re.split(r"[/\\]", ds.cache_directory[2:])
    if not inside:  # Blender's default is in the temporary directory of the machine that made the domain
        ds.cache_directory = "//cache_fluid_" + safe_name(cache.obj.name)
    if ds.cache_type != "ALL":
        ds.cache_type = "ALL"
    # Not bpy.ops.fluid.free_all(): it frees in a background job thread that races this script.
    directory = bpy.path.abspath(ds.cache_directory)
    for sub in FLUID_CACHE_DIRS:
        shutil.rmtree(os.path.join(directory, sub), ignore_errors=True)
    if frame_end is not None:
        ds.cache_frame_end = max(ds.cache_frame_start, min(ds.cache_frame_end, frame_end))
    say(f"prepared {cache.label}: cache directory {ds.cache_directory}, frames {cache.frame_range()}")


# --- bake (one part) ------------------------------------------------------------------

def influence(obj, users):
    """Why other simulations may depend on `obj`, or '' if nothing can."""
    for md in obj.modifiers:
        if md.type == "COLLISION":
            return "it is a collider"
        if md.type == "DYNAMIC_PAINT" and md.brush_settings is not None:
            return "it is a dynamic paint brush"
        if md.type == "FLUID" and md.fluid_type in ("FLOW", "EFFECTOR"):
            return "it is a fluid flow or effector"
    if obj.field is not None and obj.field.type != "NONE":
        return "it is a force field"
    for user in users.get(obj, ()):
        if user != obj and not isinstance(user, IGNORED_USERS):
            return f"{type(user).__name__} '{user.name}' uses it"
    return ""


def mute_unrelated(targets):
    """Turn off the simulations that cannot influence `targets`; what stays on is evaluated live."""
    sim_objects = [o for o in bpy.context.view_layer.objects if any(m.type in SIM_MODIFIERS for m in o.modifiers)]
    rbw = bpy.context.scene.rigidbody_world
    rb_objects = list(rbw.collection.all_objects) if rbw is not None and rbw.collection is not None else []
    users = bpy.data.user_map(subset=set(sim_objects) | set(rb_objects))
    for obj in sim_objects:
        if obj in targets:
            continue
        why = influence(obj, users)
        domain = any(m.type == "FLUID" and m.fluid_type == "DOMAIN" for m in obj.modifiers)
        if why and not domain:
            say(f"keeping '{obj.name}' live: {why}")
            continue
        for md in obj.modifiers:
            if md.type in SIM_MODIFIERS and not (md.type == "FLUID" and md.fluid_type != "DOMAIN"):
                md.show_viewport = False
                md.show_render = False
        say(f"muted '{obj.name}' (its simulation cannot affect this part)")
    if rbw is not None and rbw.enabled and rb_objects:
        needed = [o.name for o in rb_objects if o in targets or influence(o, users)]
        if needed:
            say(f"keeping the rigid body world live: {', '.join(needed[:3])} may affect this part")
        else:
            rbw.enabled = False
            say("muted the rigid body world (it cannot affect this part)")


def bake_part(args):
    part, parts = args["part"], args["parts"]
    objects = scope(args)
    mine = objects[part - 1::parts]
    if not mine:
        say(f"part {part} of {parts}: nothing to bake ({len(objects)} simulated object(s) in scope)")
        return
    say(f"baking {', '.join(o.name for o, _ in mine)}")
    staging = staging_dir()
    blend = bpy.data.filepath
    stem = os.path.splitext(os.path.basename(blend))[0]
    scratch = os.path.join(os.path.dirname(staging), f"part-{part}of{parts}")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    try:
        # First of all: from here on every cache path resolves into the scratch directory, so
        # nothing this process resets or evaluates can touch the real cache files.
        bpy.ops.wm.save_as_mainfile(filepath=os.path.join(scratch, stem + ".blend"), relative_remap=True)
        unbake_all()
        targets = {o for o, _ in mine}
        if args.get("mute_unrelated", True):
            mute_unrelated(targets)
        point_caches = [c for _, caches in mine for c in caches if c.point_cache is not None]
        fluids = [c for _, caches in mine for c in caches if c.kind == "fluid"]
        if point_caches:
            say(f"baking {len(point_caches)} point cache(s)")
            bpy.ops.ptcache.bake_all(bake=True)
        for cache in fluids:
            say(f"baking {cache.label} into {cache.modifier.domain_settings.cache_directory}")
            with override(active_object=cache.obj, object=cache.obj):
                result = bpy.ops.fluid.bake_all()
            if "FINISHED" not in result:
                raise BakeError(f"baking the {cache.label} did not finish ({', '.join(result)})")
        baked_dir = cache_dir()
        os.makedirs(staging, exist_ok=True)
        for cache in point_caches:
            files = cache_files(baked_dir, cache)
            if not files:
                raise BakeError(f"baking wrote no frames for the {cache.label}")
            remove_cache_files(staging, cache)
            for name in files.values():
                os.replace(os.path.join(baked_dir, name), os.path.join(staging, name))
            say(f"baked {cache.label}: {len(files)} frames ({min(files)}-{max(files)})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def unbake_all():
    """Every point cache simulated live in the scratch copy (their files are elsewhere)."""
    for obj in bpy.context.view_layer.objects:
        for cache in object_caches(obj, CACHE_TYPES, report=False):
            if cache.point_cache is not None and cache.point_cache.is_baked:
                with override(point_cache=cache.point_cache):
                    bpy.ops.ptcache.free_bake()
    rbw = bpy.context.scene.rigidbody_world
    if rbw is not None and rbw.point_cache.is_baked:
        with override(point_cache=rbw.point_cache):
            bpy.ops.ptcache.free_bake()


# --- finish ------------------------------------------------------------------------

def expected_frames(cache):
    span = cache.frame_range()
    if span is None:
        return None
    step = cache.point_cache.frame_step if cache.kind == "soft_body" else 1
    return set(range(span[0], span[1] + 1, step))


def finish(args):
    """Mark the caches baked while no files are next to the .blend, then put the files in place.

    Opening a .blend deletes the disk files of unbaked particle caches after the
    current frame, so the files only move in once the flags say 'baked'.
    """
    objects = scope(args)
    staging, directory = staging_dir(), cache_dir()
    problems, moves = [], []
    for _, caches in objects:
        for cache in caches:
            if cache.kind == "fluid":
                path = bpy.path.abspath(cache.modifier.domain_settings.cache_directory)
                if not os.path.isdir(path) or not any(os.scandir(path)):
                    problems.append(f"the {cache.label} has no cache in {path}")
                continue
            files = cache_files(staging, cache)
            expected = expected_frames(cache)
            if not files and cache.point_cache.is_baked:
                # A part rerun on its own (after a finished bake) leaves the other parts' bakes in place.
                kept = cache_files(directory, cache)
                if kept and (expected is None or expected <= set(kept)):
                    say(f"{cache.label}: keeping the {len(kept)} baked frames in {os.path.basename(directory)}")
                    continue
            missing = sorted(expected - set(files)) if expected is not None else []
            if missing:
                problems.append(f"the {cache.label} is missing frame(s) {', '.join(map(str, missing[:10]))}"
                                + (" ..." if len(missing) > 10 else ""))
                continue
            if not files:
                problems.append(f"the {cache.label} has no cache files")
                continue
            moves.append((cache, files))
    if problems:
        raise BakeError("; ".join(problems))
    for cache, _ in moves:
        with override(point_cache=cache.point_cache):
            bpy.ops.ptcache.bake_from_cache()
    if moves:
        os.makedirs(directory, exist_ok=True)
    for cache, files in moves:
        remove_cache_files(directory, cache)
        for name in files.values():
            os.replace(os.path.join(staging, name), os.path.join(directory, name))
        say(f"{cache.label}: {len(files)} frames in {os.path.basename(directory)}, marked baked")
    rbw = rigid_body_world(args)
    if rbw is not None:
        say(f"baking the rigid body world ({len(rbw.collection.all_objects)} objects)")
        with override(point_cache=rbw.point_cache):
            bpy.ops.ptcache.bake(bake=True)
        say(f"rigid body world: {rbw.point_cache.info}")
    bpy.ops.wm.save_mainfile()
    shutil.rmtree(os.path.dirname(staging), ignore_errors=True)
    say(f"saved {bpy.data.filepath}")


ACTIONS = {"prepare": prepare, "bake": bake_part, "finish": finish}


if __name__ == "__main__":
    try:
        arguments = json.loads(sys.argv[sys.argv.index("--") + 1])
        if not bpy.data.filepath:
            raise BakeError("no .blend file is open")
        ACTIONS[arguments["action"]](arguments)
    except BakeError as ex:
        print(f"Error: {ex}", flush=True)
        sys.exit(3)
