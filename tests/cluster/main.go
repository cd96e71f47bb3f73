// Command graylane-testcluster is one multi-call binary holding the real Kubernetes control plane
// (kube-apiserver, kube-controller-manager, kube-scheduler), a node (kubelet, kube-proxy) and etcd,
// built from the upstream Go modules.
// Usage: graylane-testcluster {kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|etcd} [flags]
package main

import (
	"context"
	"os"
	"path/filepath"
	_ "time/tzdata"

	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcm "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	name := filepath.Base(os.Args[0])
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "etcd":
			name, os.Args = os.Args[1], append(os.Args[:1:1], os.Args[2:]...)
		}
	}
	switch name {
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(kcm.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "kubelet":
		os.Exit(cli.Run(kubelet.NewKubeletCommand(context.Background())))
	case "kube-proxy":
		os.Exit(cli.Run(proxy.NewProxyCommand()))
	case "etcd":
		etcdmain.Main(os.Args)
	default:
		os.Stderr.WriteString("usage: graylane-testcluster {kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|etcd} [flags]\n")
		os.Exit(2)
	}
}
