// Locks in: container id, runtime and Kubernetes pod uid/QoS are recovered from real-world /proc/PID/cgroup lines (docker, containerd, cri-o, podman, kubelet systemd and cgroupfs drivers), and plain host processes get none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCgroup, readIdentity } from '../../src/discover/index.js';

const C1 = '4f2b6a1c0e9d8b7a6f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0f9e';
const C2 = 'a3c1d5e7f9b2a4c6e8d0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2';
const UID = '2d5a3f1e-8c1b-4e7a-9f0d-1234567890ab';
const UID_ = UID.replace(/-/g, '_');

const cases: Array<[string, string, { containerId: string | null; runtime: string | null; podUid: string | null; qos: string | null; cgroup: string }]> = [
  ['docker, systemd driver, cgroup v2', `0::/system.slice/docker-${C1}.scope\n`, { containerId: C1, runtime: 'docker', podUid: null, qos: null, cgroup: `/system.slice/docker-${C1}.scope` }],
  ['docker, cgroupfs driver, cgroup v2', `0::/docker/${C1}\n`, { containerId: C1, runtime: 'docker', podUid: null, qos: null, cgroup: `/docker/${C1}` }],
  [
    'docker, cgroup v1 (v2 line is "/")',
    `12:hugetlb:/docker/${C1}\n11:memory:/docker/${C1}\n1:name=systemd:/docker/${C1}\n0::/\n`,
    { containerId: C1, runtime: 'docker', podUid: null, qos: null, cgroup: '/' },
  ],
  [
    'kubernetes burstable pod, containerd, systemd driver',
    `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${C2}.scope\n`,
    { containerId: C2, runtime: 'containerd', podUid: UID, qos: 'burstable', cgroup: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${C2}.scope` },
  ],
  [
    'kubernetes guaranteed pod, containerd',
    `0::/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${C2}.scope`,
    { containerId: C2, runtime: 'containerd', podUid: UID, qos: 'guaranteed', cgroup: `/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${C2}.scope` },
  ],
  [
    'kubernetes besteffort pod, cri-o',
    `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${C2}.scope\n`,
    { containerId: C2, runtime: 'cri-o', podUid: UID, qos: 'besteffort', cgroup: `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${C2}.scope` },
  ],
  [
    'cri-o conmon monitor: pod yes, container no',
    `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-conmon-${C2}.scope\n`,
    { containerId: null, runtime: null, podUid: UID, qos: 'besteffort', cgroup: `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-conmon-${C2}.scope` },
  ],
  [
    'kubelet cgroupfs driver, cgroup v1',
    `11:memory:/kubepods/burstable/pod${UID}/${C2}\n3:cpu,cpuacct:/kubepods/burstable/pod${UID}/${C2}\n`,
    { containerId: C2, runtime: null, podUid: UID, qos: 'burstable', cgroup: `/kubepods/burstable/pod${UID}/${C2}` },
  ],
  [
    'kubelet cgroupfs driver, guaranteed, cgroup v2',
    `0::/kubepods/pod${UID}/${C2}\n`,
    { containerId: C2, runtime: null, podUid: UID, qos: 'guaranteed', cgroup: `/kubepods/pod${UID}/${C2}` },
  ],
  [
    'podman rootless',
    `0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${C1}.scope/container\n`,
    { containerId: C1, runtime: 'podman', podUid: null, qos: null, cgroup: `/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${C1}.scope/container` },
  ],
  ['podman cgroupfs', `0::/libpod_parent/libpod-${C1}\n`, { containerId: C1, runtime: 'podman', podUid: null, qos: null, cgroup: `/libpod_parent/libpod-${C1}` }],
  [
    'docker inside a pod: the innermost container wins',
    `0::/kubepods/besteffort/pod${UID}/${C2}/docker/${C1}\n`,
    { containerId: C1, runtime: 'docker', podUid: UID, qos: 'besteffort', cgroup: `/kubepods/besteffort/pod${UID}/${C2}/docker/${C1}` },
  ],
  ['host login session', '0::/user.slice/user-1000.slice/session-3.scope\n', { containerId: null, runtime: null, podUid: null, qos: null, cgroup: '/user.slice/user-1000.slice/session-3.scope' }],
  ['systemd service named like docker but no id', '0::/system.slice/docker.service\n', { containerId: null, runtime: null, podUid: null, qos: null, cgroup: '/system.slice/docker.service' }],
  ['short (non-64-hex) id is not a container', `0::/system.slice/docker-${C1.slice(0, 12)}.scope\n`, { containerId: null, runtime: null, podUid: null, qos: null, cgroup: `/system.slice/docker-${C1.slice(0, 12)}.scope` }],
];

for (const [name, text, want] of cases) {
  test(`cgroup: ${name}`, () => {
    assert.deepEqual(parseCgroup(text), want);
  });
}

test('garbage and empty cgroup files give no identity instead of throwing', () => {
  assert.deepEqual(parseCgroup(''), { cgroup: null, containerId: null, runtime: null, podUid: null, qos: null });
  assert.deepEqual(parseCgroup('garbage\n\u0000\u0001'), { cgroup: null, containerId: null, runtime: null, podUid: null, qos: null });
  // a pod directory outside kubepods is not a pod
  assert.equal(parseCgroup(`0::/mystuff/pod${UID}/x\n`).podUid, null);
});

test('readIdentity reads /proc/PID/cgroup through the injected reader; a vanished pid is null', () => {
  const files = new Map([['/fake/proc/42/cgroup', `0::/system.slice/docker-${C1}.scope\n`]]);
  const read = (p: string) => files.get(p) ?? null;
  assert.equal(readIdentity(42, read, '/fake/proc')!.containerId, C1);
  assert.equal(readIdentity(43, read, '/fake/proc'), null);
  // the real one for this process parses (whatever it is)
  const self = readIdentity(process.pid);
  assert.ok(self && typeof self.cgroup === 'string');
});
