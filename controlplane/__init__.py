"""controlplane: an Envoy xDS control plane for Kubernetes Ingress and IngressRoute."""
