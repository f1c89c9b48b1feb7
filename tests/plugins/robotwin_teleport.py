"""TEST ONLY: RoboTwin's stack_blocks_two with the green block placed onto the red one after every reset
(grippers open), so the task's own `check_success` holds on the next physics step. Registered as its own
simulator ("robotwin2_teleport") so that nothing in verl/ carries a test hook."""

from __future__ import annotations

import dataclasses

from verl.envs import EnvConfig, EnvResult, ResetRequest, register_env
from verl.envs.robotwin import ROBOTWIN


def make_teleport_env(cfg: EnvConfig):
    from verl.envs.robotwin.env import RobotwinEnv

    class TeleportEnv(RobotwinEnv):
        def reset(self, request: ResetRequest) -> EnvResult:
            result = super().reset(request)
            import sapien

            red = self.task.block1.get_pose()
            self.task.block2.actor.set_pose(sapien.Pose([red.p[0], red.p[1], red.p[2] + 0.05], red.q))
            return result

    return TeleportEnv(cfg)


register_env(dataclasses.replace(ROBOTWIN, name="robotwin2_teleport", make=make_teleport_env))
