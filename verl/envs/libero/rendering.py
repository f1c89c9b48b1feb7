"""Render cameras only on the steps that need an image, with images identical to rendering every step.

robosuite computes observations through "observables", each with a sampling timer advanced at every
physics substep; a camera image is taken by its observable at a particular substep of the control
step. A disabled observable costs nothing. Re-enabling one resets its timer, so on its own it would
sample at the wrong substep (or return a blank frame). The gate therefore re-enables the camera
observables just before the step that needs an image and copies the timer state from an observable
that is always on (the end-effector position, same sampling rate), which makes the camera sample
exactly where it would have if it had never been switched off.
"""

from __future__ import annotations

from typing import Any

# An always-enabled observable with the same sampling rate as the cameras.
_REFERENCE_OBSERVABLE = "robot0_eef_pos"
_TIMER_FIELDS = ("_time_since_last_sample", "_sampled", "_current_delay")
# Shadow-map size used when no light casts shadows (the map is then never sampled).
_MIN_SHADOW_MAP = 256


class CameraGate:
    """Switches a robosuite env's camera observables on for chosen steps only."""

    def __init__(self, robosuite_env: Any, camera_observables: list[str]):
        self._env = robosuite_env
        self._names = list(camera_observables)
        self._on = True  # robosuite builds every observable enabled
        self.set(False)

    @property
    def is_on(self) -> bool:
        return self._on

    def set(self, on: bool) -> None:
        """Enable (with the reference's timer state) or disable the cameras for the next step(s)."""
        if on == self._on:
            return
        observables = self._env._observables
        reference = observables[_REFERENCE_OBSERVABLE]
        for name in self._names:
            self._env.modify_observable(name, "enabled", on)
            if on:
                for attr in _TIMER_FIELDS:
                    setattr(observables[name], attr, getattr(reference, attr))
        self._on = on


def shrink_render_buffers(sim: Any, camera_size: int) -> None:
    """Rebuild the offscreen render context with buffers no larger than the images need.

    robosuite allocates a 640x480 offscreen buffer and MuJoCo a 4096^2 shadow map. LIBERO's lights
    cast no shadows, so the shadow map is never sampled and a small one gives identical images; the
    buffer only needs the camera size. Saves ~70 MiB per process with software rendering.
    """
    ctx = sim._render_context_offscreen
    if ctx is None:
        return
    model = sim.model._model
    ctx.gl_ctx.make_current()
    if not model.light_castshadow.any():
        model.vis.quality.shadowsize = _MIN_SHADOW_MAP
    # Frees the MuJoCo render context and builds it again from the (updated) model settings.
    ctx.update_offscreen_size(camera_size, camera_size)
