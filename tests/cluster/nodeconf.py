"""Configuration files of the test node: pure functions of the node's directory and its addresses.

containerd (config version 2, its own root/state/socket, ``restrict_oom_score_adj``, cgroupfs runc,
the locally built pause image), the CNI conflist (bridge + host-local, no masquerading, no default
route: pods get routes to the service CIDR and the node IP only), the KubeletConfiguration, the
KubeProxyConfiguration and CoreDNS's Corefile (no ``forward``: outside names are never resolved).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class NodeNet:
    name: str = "graylane-node"
    node_ip: str = "10.245.0.1"  # a /32 on lo: kubelet, CoreDNS and kube-apiserver listen here
    pod_cidr: str = "10.244.0.0/24"
    gateway: str = "10.244.0.1"  # the bridge's address
    service_cidr: str = "10.0.0.0/24"  # = kube-apiserver --service-cluster-ip-range
    bridge: str = "graylane0"
    cluster_domain: str = "cluster.local"
    cni_network: str = "graylane"

    @property
    def dns_ip(self) -> str:
        return self.node_ip


NET = NodeNet()


@dataclass(frozen=True)
class NodePaths:
    root: Path  # <state_dir>/node

    @property
    def containerd(self) -> Path:
        return self.root / "containerd"

    @property
    def socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def cni_conf(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def kubelet(self) -> Path:
        return self.root / "kubelet"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def containerd_toml(paths: NodePaths, sandbox_image: str) -> str:
    c = paths.containerd
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]
[grpc]
  address = "{paths.socket}"
[ttrpc]
  address = "{c / "ttrpc.sock"}"
[debug]
  address = ""
[metrics]
  address = ""
[{cri}]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true  # pod network namespaces live (and are cleaned up) under our state dir
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{c / "runc"}"
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{paths.cni_conf}"
  max_conf_num = 1
"""


def cni_conflist(paths: NodePaths, net: NodeNet = NET) -> str:
    gw = net.gateway
    ipam = {
        "type": "host-local",
        "ranges": [[{"subnet": net.pod_cidr, "gateway": gw}]],
        "routes": [{"dst": net.service_cidr, "gw": gw}, {"dst": f"{net.node_ip}/32", "gw": gw}],
        "dataDir": str(paths.root / "cni" / "ipam"),
    }
    bridge = {
        "type": "bridge",
        "bridge": net.bridge,
        # true would switch on forwarding for every interface; nodenet.setup does it for the bridge only
        "isGateway": False,
        "isDefaultGateway": False,
        "ipMasq": False,
        "hairpinMode": True,
        "ipam": ipam,
    }
    conf = {"cniVersion": "0.4.0", "name": net.cni_network, "plugins": [bridge, {"type": "loopback"}]}
    return json.dumps(conf, indent=2) + "\n"


def kubelet_config(paths: NodePaths, *, ca: Path, healthz_port: int, net: NodeNet = NET) -> str:
    k = paths.kubelet
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{paths.socket}",
        "address": net.node_ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "volumePluginDir": str(k / "volume-plugins"),
        "podLogsDir": str(paths.logs / "pods"),
        "clusterDNS": [net.dns_ip],
        "clusterDomain": net.cluster_domain,
        "resolvConf": str(paths.root / "resolv.conf"),
        "serializeImagePulls": False,
        "registerNode": True,
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "nodeStatusReportFrequency": "20s",
        "localStorageCapacityIsolation": True,
        "protectKernelDefaults": False,
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_config(kubeconfig: Path, *, healthz_port: int, metrics_port: int, net: NodeNet = NET) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": net.name,
        "bindAddress": net.node_ip,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "mode": "iptables",
        "clusterCIDR": net.pod_cidr,
        "nodePortAddresses": [f"{net.node_ip}/32"],
        "conntrack": {"maxPerCore": 0, "min": 0},
        "iptables": {"masqueradeAll": False, "localhostNodePorts": False},
    }
    return yaml.safe_dump(config, sort_keys=False)


def corefile(kubeconfig: Path, *, health_port: int, ready_port: int, net: NodeNet = NET) -> str:
    # Only the cluster's zones are served: any other name gets REFUSED (no server block matches).
    zones = f"{net.cluster_domain}:53 in-addr.arpa:53 ip6.arpa:53"
    return f"""{zones} {{
    bind {net.dns_ip}
    errors
    health 127.0.0.1:{health_port}
    ready 127.0.0.1:{ready_port}
    kubernetes {net.cluster_domain} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        ttl 30
    }}
    cache 30
    loadbalance
}}
"""


def coredns_rbac(user: str) -> list[dict[str, object]]:
    """Least privilege for CoreDNS's client certificate: read Services, EndpointSlices, Namespaces."""
    rules = [
        {"apiGroups": [""], "resources": ["services", "namespaces"], "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
    ]
    name = "graylane:coredns"
    api = "rbac.authorization.k8s.io/v1"
    role: dict[str, object] = {"apiVersion": api, "kind": "ClusterRole", "metadata": {"name": name}}
    binding: dict[str, object] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    return [role | {"rules": rules}, binding]
