"""The Docker access layer: typed views of the Engine API's documents, and Docker's errors in one line.

The documents are what the Engine API answers (trimmed to the fields the views read); the real calls run
in the Compose and Swarm runtime tests.
"""

from __future__ import annotations

import pytest
from docker.errors import APIError
from python_on_whales.exceptions import DockerException as WhalesError

from artm_compose.docker_access import ContainerView, NetworkView, ServiceView, TaskView, error_reason, failing_as
from artm_compose.errors import BootstrapError, RuntimeUnavailable

INSPECTED = {
    "Id": "c0ffee", "Name": "/artm-demo-master", "RestartCount": 2,
    "Config": {"Image": "artm-compose/artm:abc", "Labels": {"com.docker.compose.service": "master"}},
    "State": {"Status": "exited", "Running": False, "Restarting": False, "ExitCode": 3,
              "StartedAt": "2026-12-04T08:00:00.5Z"},
    "NetworkSettings": {"Ports": {"6379/tcp": [{"HostIp": "127.0.0.1", "HostPort": "7001"}], "16379/tcp": None}},
}


def test_an_inspected_container_reads_as_its_state_exit_code_and_restarts():
    view = ContainerView.inspected(INSPECTED)
    assert (view.id, view.name, view.service, view.image) == ("c0ffee", "artm-demo-master", "master",
                                                              "artm-compose/artm:abc")
    assert (view.running, view.exit_code, view.restart_count, view.host_ports) == (False, 3, 2, (7001,))
    assert view.describe() == "exited, exit code 3"
    healthy = ContainerView.inspected({**INSPECTED, "State": {"Status": "running", "Running": True,
                                                              "Health": {"Status": "healthy"}}})
    assert healthy.describe() == "running (healthy)" and healthy.health == "healthy"


def test_a_listed_container_counts_as_running_while_docker_restarts_it():
    summary = {"Id": "d00d", "Names": ["/artm-demo-redis-0"], "State": "restarting", "Created": 1796342400,
               "Labels": {"com.docker.compose.service": "redis-0", "com.docker.compose.oneoff": "False"},
               "Ports": [{"PrivatePort": 6379, "PublicPort": 7000}, {"PrivatePort": 16379}]}
    view = ContainerView.listed(summary)
    assert view.running and view.restarting and view.host_ports == (7000,) and view.service == "redis-0"
    assert view.created.isoformat() == "2026-12-04T00:00:00+00:00"
    oneoff = ContainerView.listed({**summary, "Labels": {"com.docker.compose.service": "control",
                                                         "com.docker.compose.oneoff": "True"}})
    assert oneoff.service is None


def test_a_service_view_tells_a_changed_spec_by_its_digest():
    service = {"ID": "s1", "CreatedAt": "2026-12-04T08:00:00Z",
               "Spec": {"Name": "artm-demo_master", "Labels": {"artm-compose.role": "master"},
                        "Mode": {"Replicated": {"Replicas": 1}}, "TaskTemplate": {"ContainerSpec": {"Args": ["a"]}}}}
    view = ServiceView.of(service)
    assert (view.name, view.labels["artm-compose.role"], view.replicas) == ("artm-demo_master", "master", 1)
    assert view.created.isoformat(timespec="seconds") == "2026-12-04T08:00:00+00:00"
    same = ServiceView.of({**service, "Version": {"Index": 9}})
    changed = ServiceView.of({**service, "Spec": {**service["Spec"], "TaskTemplate": {"ContainerSpec": {"Args": ["b"]}}}})
    assert same.spec_digest == view.spec_digest != changed.spec_digest
    assert ServiceView.of({**service, "Spec": {**service["Spec"], "Mode": {"Global": {}}}}).replicas is None


def test_task_times_sort_although_docker_trims_the_nanoseconds():
    early = TaskView.of({"ID": "a", "CreatedAt": "2026-01-01T00:00:05.123456789Z", "Status": {"State": "failed"}})
    late = TaskView.of({"ID": "b", "CreatedAt": "2026-01-01T00:00:05.5Z", "Status": {"State": "running"}})
    assert early.created < late.created and early.failed and early.terminal and not late.terminal


def test_docker_errors_read_as_the_line_that_says_why():
    whales = WhalesError(["docker", "stack", "deploy"], 1, stdout=b"", stderr=b"Creating network\nno such image\n")
    assert error_reason(whales) == "no such image"
    assert error_reason(APIError("500 Server Error", explanation="network artm-x not found")) == "network artm-x not found"
    assert error_reason(RuntimeError()) == "RuntimeError"


def test_failing_as_names_the_step_and_picks_the_error():
    with pytest.raises(RuntimeUnavailable, match=r"^docker stack deploy of s.yml failed: no such image$"):
        with failing_as("docker stack deploy of s.yml"):
            raise WhalesError(["docker"], 1, stdout=b"", stderr=b"no such image\n")
    with pytest.raises(BootstrapError, match="^starting the executors failed: gone$"):
        with failing_as("starting the executors", BootstrapError):
            raise APIError("404", explanation="gone")
    with pytest.raises(KeyError):  # not Docker's: passes through
        with failing_as("anything"):
            raise KeyError("x")


def test_a_network_view_keeps_its_ipv4_and_ipv6_pools():
    network = NetworkView.of({"Id": "n1", "Name": "artm-demo", "Labels": None,
                              "IPAM": {"Config": [{"Subnet": "10.213.0.0/24", "Gateway": "10.213.0.1",
                                                   "IPRange": "10.213.0.128/25"}, {"Subnet": "fd00::/64"}]}})
    assert network.labels == {} and [p.subnet for p in network.pools] == ["10.213.0.0/24", "fd00::/64"]
    assert network.pools[0].describe() == "subnet 10.213.0.0/24, gateway 10.213.0.1, range 10.213.0.128/25"
    assert NetworkView.of({"Id": "n2", "Name": "none", "IPAM": {"Config": None}}).pools == ()
