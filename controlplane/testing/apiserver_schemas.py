"""Compact OpenAPI schemas of the built-in kinds the test API server describes: data only.

`kubectl explain` reads a kind's fields, their types and their descriptions from the server's
OpenAPI documents (`apiserver_openapi` builds those). Kubernetes publishes schemas of hundreds of
kilobytes; this module keeps what `explain` shows for the kinds controlplane reads or writes
(Service, EndpointSlice, Secret, Ingress, IngressClass, Namespace, both Events, Lease) and every
definition they reach, each description cut to its first sentence. `managedFields` is left out
of ObjectMeta (its entries are the server's bookkeeping).

The entries were generated from the Kubernetes 1.32 definitions that the `kubernetes-validate`
test dependency ships (tests/testapi/test_apiserver_openapi.py checks every field here against
them: same names, same types, same required fields), so a hand edit that drifts from Kubernetes
fails a test.

Notation: a key is a definition's name without its package prefix (`core.v1.Service` is
`io.k8s.api.core.v1.Service`, `meta.v1.ObjectMeta` is
`io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`; see `full_name`). A field is
`"TYPE[!] description"`: TYPE is `string`, `integer`, `number`, `boolean` or `object`, optionally
with `:FORMAT` (`integer:int32`), `[]TYPE`, `map[string]TYPE` or another definition's key;
`!` marks a required field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SCHEMAS", "ObjectSchema", "Primitive", "full_name", "short_name"]

_PACKAGES = (
    ("meta.v1.", "io.k8s.apimachinery.pkg.apis.meta.v1."),
    ("intstr.", "io.k8s.apimachinery.pkg.util.intstr."),
    ("", "io.k8s.api."),
)


def full_name(short: str) -> str:
    """The OpenAPI definition name of a key of `SCHEMAS`."""
    for prefix, package in _PACKAGES:
        if short.startswith(prefix):
            return package + short[len(prefix) :]
    raise AssertionError("unreachable: the last prefix is empty")


def short_name(full: str) -> str:
    """The key of `SCHEMAS` for an OpenAPI definition name (`full_name`'s inverse)."""
    for prefix, package in _PACKAGES:
        if full.startswith(package):
            return prefix + full[len(package) :]
    return full


@dataclass(frozen=True)
class Primitive:
    """A named definition that is a plain value (`meta.v1.Time` is a date-time string)."""

    type: str
    description: str


@dataclass(frozen=True)
class ObjectSchema:
    """A named object definition; `gvk` is set on the kinds a resource is served as."""

    description: str
    fields: dict[str, str] = field(hash=False)
    gvk: tuple[str, str, str] | None = None


_API_VERSION = "string APIVersion defines the versioned schema of this representation of an object."
_KIND = "string Kind is a string value representing the REST resource this object represents."
_METADATA = "meta.v1.ObjectMeta Standard object's metadata."

SCHEMAS: dict[str, Primitive | ObjectSchema] = {
    "meta.v1.Time": Primitive(
        "string:date-time",
        "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.",
    ),
    "meta.v1.OwnerReference": ObjectSchema(
        "OwnerReference contains enough information to let you identify an owning object.",
        {
            "apiVersion": "string! API version of the referent.",
            "blockOwnerDeletion": (
                'boolean If true, AND if the owner has the "foregroundDeletion" finalizer, '
                "then the owner cannot be deleted from the key-value store until this "
                "reference is removed."
            ),
            "controller": "boolean If true, this reference points to the managing controller.",
            "kind": "string! Kind of the referent.",
            "name": "string! Name of the referent.",
            "uid": "string! UID of the referent.",
        },
    ),
    "meta.v1.ObjectMeta": ObjectSchema(
        "ObjectMeta is metadata that all persisted resources must have, which includes all "
        "objects users must create.",
        {
            "annotations": (
                "map[string]string Annotations is an unstructured key value map stored with a"
                " resource that may be set by external tools to store and retrieve arbitrary "
                "metadata."
            ),
            "creationTimestamp": (
                "meta.v1.Time CreationTimestamp is a timestamp representing the server time "
                "when this object was created."
            ),
            "deletionGracePeriodSeconds": (
                "integer:int64 Number of seconds allowed for this object to gracefully "
                "terminate before it will be removed from the system."
            ),
            "deletionTimestamp": (
                "meta.v1.Time DeletionTimestamp is RFC 3339 date and time at which this "
                "resource will be deleted."
            ),
            "finalizers": "[]string Must be empty before the object is deleted from the registry.",
            "generateName": (
                "string GenerateName is an optional prefix, used by the server, to generate a"
                " unique name ONLY IF the Name field has not been provided."
            ),
            "generation": (
                "integer:int64 A sequence number representing a specific generation of the "
                "desired state."
            ),
            "labels": (
                "map[string]string Map of string keys and values that can be used to organize"
                " and categorize (scope and select) objects."
            ),
            "name": "string Name must be unique within a namespace.",
            "namespace": (
                "string Namespace defines the space within which each name must be unique."
            ),
            "ownerReferences": "[]meta.v1.OwnerReference List of objects depended by this object.",
            "resourceVersion": (
                "string An opaque value that represents the internal version of this object "
                "that can be used by clients to determine when objects have changed."
            ),
            "selfLink": (
                "string Deprecated: selfLink is a legacy read-only field that is no longer "
                "populated by the system."
            ),
            "uid": "string UID is the unique in time and space value for this object.",
        },
    ),
    "intstr.IntOrString": Primitive("string:int-or-string", ""),
    "core.v1.ServicePort": ObjectSchema(
        "ServicePort contains information on service's port.",
        {
            "appProtocol": "string The application protocol for this port.",
            "name": "string The name of this port within the service.",
            "nodePort": (
                "integer:int32 The port on each node on which this service is exposed when "
                "type is NodePort or LoadBalancer."
            ),
            "port": "integer:int32! The port that will be exposed by this service.",
            "protocol": "string The IP protocol for this port.",
            "targetPort": (
                "intstr.IntOrString Number or name of the port to access on the pods targeted"
                " by the service."
            ),
        },
    ),
    "core.v1.ClientIPConfig": ObjectSchema(
        "ClientIPConfig represents the configurations of Client IP based session affinity.",
        {
            "timeoutSeconds": (
                "integer:int32 timeoutSeconds specifies the seconds of ClientIP type session "
                "sticky time."
            ),
        },
    ),
    "core.v1.SessionAffinityConfig": ObjectSchema(
        "SessionAffinityConfig represents the configurations of session affinity.",
        {
            "clientIP": (
                "core.v1.ClientIPConfig clientIP contains the configurations of Client IP "
                "based session affinity."
            ),
        },
    ),
    "core.v1.ServiceSpec": ObjectSchema(
        "ServiceSpec describes the attributes that a user creates on a service.",
        {
            "allocateLoadBalancerNodePorts": (
                "boolean allocateLoadBalancerNodePorts defines if NodePorts will be "
                "automatically allocated for services with type LoadBalancer."
            ),
            "clusterIP": (
                "string clusterIP is the IP address of the service and is usually assigned "
                "randomly."
            ),
            "clusterIPs": (
                "[]string ClusterIPs is a list of IP addresses assigned to this service, and "
                "are usually assigned randomly."
            ),
            "externalIPs": (
                "[]string externalIPs is a list of IP addresses for which nodes in the "
                "cluster will also accept traffic for this service."
            ),
            "externalName": (
                "string externalName is the external reference that discovery mechanisms will"
                " return as an alias for this service (e.g. a DNS CNAME record)."
            ),
            "externalTrafficPolicy": (
                "string externalTrafficPolicy describes how nodes distribute service traffic "
                'they receive on one of the Service\'s "externally-facing" addresses '
                "(NodePorts, ExternalIPs, and LoadBalancer IPs)."
            ),
            "healthCheckNodePort": (
                "integer:int32 healthCheckNodePort specifies the healthcheck nodePort for the"
                " service."
            ),
            "internalTrafficPolicy": (
                "string InternalTrafficPolicy describes how nodes distribute service traffic "
                "they receive on the ClusterIP."
            ),
            "ipFamilies": (
                "[]string IPFamilies is a list of IP families (e.g. IPv4, IPv6) assigned to "
                "this service."
            ),
            "ipFamilyPolicy": (
                "string IPFamilyPolicy represents the dual-stack-ness requested or required "
                "by this Service."
            ),
            "loadBalancerClass": (
                "string loadBalancerClass is the class of the load balancer implementation "
                "this Service belongs to."
            ),
            "loadBalancerIP": "string Only applies to Service Type: LoadBalancer.",
            "loadBalancerSourceRanges": (
                "[]string If specified and supported by the platform, this will restrict "
                "traffic through the cloud-provider load-balancer will be restricted to the "
                "specified client IPs."
            ),
            "ports": "[]core.v1.ServicePort The list of ports that are exposed by this service.",
            "publishNotReadyAddresses": (
                "boolean publishNotReadyAddresses indicates that any agent which deals with "
                "endpoints for this Service should disregard any indications of "
                "ready/not-ready."
            ),
            "selector": (
                "map[string]string Route service traffic to pods with label keys and values "
                "matching this selector."
            ),
            "sessionAffinity": 'string Supports "ClientIP" and "None".',
            "sessionAffinityConfig": (
                "core.v1.SessionAffinityConfig sessionAffinityConfig contains the "
                "configurations of session affinity."
            ),
            "trafficDistribution": (
                "string TrafficDistribution offers a way to express preferences for how "
                "traffic is distributed to Service endpoints."
            ),
            "type": "string type determines how the Service is exposed.",
        },
    ),
    "meta.v1.Condition": ObjectSchema(
        "Condition contains details for one aspect of the current state of this API Resource.",
        {
            "lastTransitionTime": (
                "meta.v1.Time! lastTransitionTime is the last time the condition transitioned"
                " from one status to another."
            ),
            "message": (
                "string! message is a human readable message indicating details about the "
                "transition."
            ),
            "observedGeneration": (
                "integer:int64 observedGeneration represents the .metadata.generation that "
                "the condition was set based upon."
            ),
            "reason": (
                "string! reason contains a programmatic identifier indicating the reason for "
                "the condition's last transition."
            ),
            "status": "string! status of the condition, one of True, False, Unknown.",
            "type": "string! type of condition in CamelCase or in foo.example.com/CamelCase.",
        },
    ),
    "core.v1.PortStatus": ObjectSchema(
        "PortStatus represents the error condition of a service port",
        {
            "error": (
                "string Error is to record the problem with the service port The format of "
                "the error shall comply with the following rules: - built-in error values "
                "shall be specified in this file and those shall use CamelCase names - cloud "
                "provider specific error values must have names that comply with the format "
                "foo.example.com/CamelCase."
            ),
            "port": (
                "integer:int32! Port is the port number of the service port of which status "
                "is recorded here"
            ),
            "protocol": (
                "string! Protocol is the protocol of the service port of which status is "
                'recorded here The supported values are: "TCP", "UDP", "SCTP"'
            ),
        },
    ),
    "core.v1.LoadBalancerIngress": ObjectSchema(
        "LoadBalancerIngress represents the status of a load-balancer ingress point: traffic "
        "intended for the service should be sent to an ingress point.",
        {
            "hostname": (
                "string Hostname is set for load-balancer ingress points that are DNS based "
                "(typically AWS load-balancers)"
            ),
            "ip": (
                "string IP is set for load-balancer ingress points that are IP based "
                "(typically GCE or OpenStack load-balancers)"
            ),
            "ipMode": (
                "string IPMode specifies how the load-balancer IP behaves, and may only be "
                "specified when the ip field is specified."
            ),
            "ports": (
                "[]core.v1.PortStatus Ports is a list of records of service ports If used, "
                "every port defined in the service should have an entry in it"
            ),
        },
    ),
    "core.v1.LoadBalancerStatus": ObjectSchema(
        "LoadBalancerStatus represents the status of a load-balancer.",
        {
            "ingress": (
                "[]core.v1.LoadBalancerIngress Ingress is a list containing ingress points "
                "for the load-balancer."
            ),
        },
    ),
    "core.v1.ServiceStatus": ObjectSchema(
        "ServiceStatus represents the current status of a service.",
        {
            "conditions": "[]meta.v1.Condition Current service state",
            "loadBalancer": (
                "core.v1.LoadBalancerStatus LoadBalancer contains the current status of the "
                "load-balancer, if one is present."
            ),
        },
    ),
    "core.v1.Service": ObjectSchema(
        "Service is a named abstraction of software service (for example, mysql) consisting "
        "of local port (for example 3306) that the proxy listens on, and the selector that "
        "determines which pods will answer requests sent through the proxy.",
        {
            "apiVersion": _API_VERSION,
            "kind": _KIND,
            "metadata": _METADATA,
            "spec": (
                "core.v1.ServiceSpec Spec defines the behavior of a service. https://git.k8s."
                "io/community/contributors/devel/sig-architecture/api-conventions.md#spec-and"
                "-status"
            ),
            "status": "core.v1.ServiceStatus Most recently observed status of the service.",
        },
        gvk=("", "v1", "Service"),
    ),
    "discovery.v1.EndpointConditions": ObjectSchema(
        "EndpointConditions represents the current condition of an endpoint.",
        {
            "ready": (
                "boolean ready indicates that this endpoint is prepared to receive traffic, "
                "according to whatever system is managing the endpoint."
            ),
            "serving": (
                "boolean serving is identical to ready except that it is set regardless of "
                "the terminating state of endpoints."
            ),
            "terminating": "boolean terminating indicates that this endpoint is terminating.",
        },
    ),
    "discovery.v1.ForZone": ObjectSchema(
        "ForZone provides information about which zones should consume this endpoint.",
        {
            "name": "string! name represents the name of the zone.",
        },
    ),
    "discovery.v1.EndpointHints": ObjectSchema(
        "EndpointHints provides hints describing how an endpoint should be consumed.",
        {
            "forZones": (
                "[]discovery.v1.ForZone forZones indicates the zone(s) this endpoint should "
                "be consumed by to enable topology aware routing."
            ),
        },
    ),
    "core.v1.ObjectReference": ObjectSchema(
        "ObjectReference contains enough information to let you inspect or modify the "
        "referred object.",
        {
            "apiVersion": "string API version of the referent.",
            "fieldPath": (
                "string If referring to a piece of an object instead of an entire object, "
                "this string should contain a valid JSON/Go field access statement, such as "
                "desiredState.manifest.containers[2]."
            ),
            "kind": "string Kind of the referent.",
            "name": "string Name of the referent.",
            "namespace": "string Namespace of the referent.",
            "resourceVersion": (
                "string Specific resourceVersion to which this reference is made, if any."
            ),
            "uid": "string UID of the referent.",
        },
    ),
    "discovery.v1.Endpoint": ObjectSchema(
        'Endpoint represents a single logical "backend" implementing a service.',
        {
            "addresses": "[]string! addresses of this endpoint.",
            "conditions": (
                "discovery.v1.EndpointConditions conditions contains information about the "
                "current status of the endpoint."
            ),
            "deprecatedTopology": (
                "map[string]string deprecatedTopology contains topology information part of "
                "the v1beta1 API."
            ),
            "hints": (
                "discovery.v1.EndpointHints hints contains information associated with how an"
                " endpoint should be consumed."
            ),
            "hostname": "string hostname of this endpoint.",
            "nodeName": "string nodeName represents the name of the Node hosting this endpoint.",
            "targetRef": (
                "core.v1.ObjectReference targetRef is a reference to a Kubernetes object that"
                " represents this endpoint."
            ),
            "zone": "string zone is the name of the Zone this endpoint exists in.",
        },
    ),
    "discovery.v1.EndpointPort": ObjectSchema(
        "EndpointPort represents a Port used by an EndpointSlice",
        {
            "appProtocol": "string The application protocol for this port.",
            "name": "string name represents the name of this port.",
            "port": "integer:int32 port represents the port number of the endpoint.",
            "protocol": "string protocol represents the IP protocol for this port.",
        },
    ),
    "discovery.v1.EndpointSlice": ObjectSchema(
        "EndpointSlice represents a subset of the endpoints that implement a service.",
        {
            "addressType": (
                "string! addressType specifies the type of address carried by this EndpointSlice."
            ),
            "apiVersion": _API_VERSION,
            "endpoints": (
                "[]discovery.v1.Endpoint! endpoints is a list of unique endpoints in this slice."
            ),
            "kind": _KIND,
            "metadata": _METADATA,
            "ports": (
                "[]discovery.v1.EndpointPort ports specifies the list of network ports "
                "exposed by each endpoint in this slice."
            ),
        },
        gvk=("discovery.k8s.io", "v1", "EndpointSlice"),
    ),
    "core.v1.Secret": ObjectSchema(
        "Secret holds secret data of a certain type.",
        {
            "apiVersion": _API_VERSION,
            "data": "map[string]string:byte Data contains the secret data.",
            "immutable": (
                "boolean Immutable, if set to true, ensures that data stored in the Secret "
                "cannot be updated (only object metadata can be modified)."
            ),
            "kind": _KIND,
            "metadata": _METADATA,
            "stringData": (
                "map[string]string stringData allows specifying non-binary secret data in "
                "string form."
            ),
            "type": "string Used to facilitate programmatic handling of secret data.",
        },
        gvk=("", "v1", "Secret"),
    ),
    "core.v1.TypedLocalObjectReference": ObjectSchema(
        "TypedLocalObjectReference contains enough information to let you locate the typed "
        "referenced object inside the same namespace.",
        {
            "apiGroup": "string APIGroup is the group for the resource being referenced.",
            "kind": "string! Kind is the type of resource being referenced",
            "name": "string! Name is the name of resource being referenced",
        },
    ),
    "networking.v1.ServiceBackendPort": ObjectSchema(
        "ServiceBackendPort is the service port being referenced.",
        {
            "name": "string name is the name of the port on the Service.",
            "number": "integer:int32 number is the numerical port number (e.g. 80) on the Service.",
        },
    ),
    "networking.v1.IngressServiceBackend": ObjectSchema(
        "IngressServiceBackend references a Kubernetes Service as a Backend.",
        {
            "name": "string! name is the referenced service.",
            "port": "networking.v1.ServiceBackendPort port of the referenced service.",
        },
    ),
    "networking.v1.IngressBackend": ObjectSchema(
        "IngressBackend describes all endpoints for a given service and port.",
        {
            "resource": (
                "core.v1.TypedLocalObjectReference resource is an ObjectRef to another "
                "Kubernetes resource in the namespace of the Ingress object."
            ),
            "service": (
                "networking.v1.IngressServiceBackend service references a service as a backend."
            ),
        },
    ),
    "networking.v1.HTTPIngressPath": ObjectSchema(
        "HTTPIngressPath associates a path with a backend.",
        {
            "backend": (
                "networking.v1.IngressBackend! backend defines the referenced service "
                "endpoint to which the traffic will be forwarded to."
            ),
            "path": "string path is matched against the path of an incoming request.",
            "pathType": "string! pathType determines the interpretation of the path matching.",
        },
    ),
    "networking.v1.HTTPIngressRuleValue": ObjectSchema(
        "HTTPIngressRuleValue is a list of http selectors pointing to backends.",
        {
            "paths": (
                "[]networking.v1.HTTPIngressPath! paths is a collection of paths that map "
                "requests to backends."
            ),
        },
    ),
    "networking.v1.IngressRule": ObjectSchema(
        "IngressRule represents the rules mapping the paths under a specified host to the "
        "related backend services.",
        {
            "host": (
                "string host is the fully qualified domain name of a network host, as defined"
                " by RFC 3986."
            ),
            "http": "networking.v1.HTTPIngressRuleValue ",
        },
    ),
    "networking.v1.IngressTLS": ObjectSchema(
        "IngressTLS describes the transport layer security associated with an ingress.",
        {
            "hosts": "[]string hosts is a list of hosts included in the TLS certificate.",
            "secretName": (
                "string secretName is the name of the secret used to terminate TLS traffic on"
                " port 443."
            ),
        },
    ),
    "networking.v1.IngressSpec": ObjectSchema(
        "IngressSpec describes the Ingress the user wishes to exist.",
        {
            "defaultBackend": (
                "networking.v1.IngressBackend defaultBackend is the backend that should "
                "handle requests that don't match any rule."
            ),
            "ingressClassName": (
                "string ingressClassName is the name of an IngressClass cluster resource."
            ),
            "rules": (
                "[]networking.v1.IngressRule rules is a list of host rules used to configure "
                "the Ingress."
            ),
            "tls": "[]networking.v1.IngressTLS tls represents the TLS configuration.",
        },
    ),
    "networking.v1.IngressPortStatus": ObjectSchema(
        "IngressPortStatus represents the error condition of a service port",
        {
            "error": (
                "string error is to record the problem with the service port The format of "
                "the error shall comply with the following rules: - built-in error values "
                "shall be specified in this file and those shall use CamelCase names - cloud "
                "provider specific error values must have names that comply with the format "
                "foo.example.com/CamelCase."
            ),
            "port": "integer:int32! port is the port number of the ingress port.",
            "protocol": "string! protocol is the protocol of the ingress port.",
        },
    ),
    "networking.v1.IngressLoadBalancerIngress": ObjectSchema(
        "IngressLoadBalancerIngress represents the status of a load-balancer ingress point.",
        {
            "hostname": (
                "string hostname is set for load-balancer ingress points that are DNS based."
            ),
            "ip": "string ip is set for load-balancer ingress points that are IP based.",
            "ports": (
                "[]networking.v1.IngressPortStatus ports provides information about the ports"
                " exposed by this LoadBalancer."
            ),
        },
    ),
    "networking.v1.IngressLoadBalancerStatus": ObjectSchema(
        "IngressLoadBalancerStatus represents the status of a load-balancer.",
        {
            "ingress": (
                "[]networking.v1.IngressLoadBalancerIngress ingress is a list containing "
                "ingress points for the load-balancer."
            ),
        },
    ),
    "networking.v1.IngressStatus": ObjectSchema(
        "IngressStatus describe the current state of the Ingress.",
        {
            "loadBalancer": (
                "networking.v1.IngressLoadBalancerStatus loadBalancer contains the current "
                "status of the load-balancer."
            ),
        },
    ),
    "networking.v1.Ingress": ObjectSchema(
        "Ingress is a collection of rules that allow inbound connections to reach the "
        "endpoints defined by a backend.",
        {
            "apiVersion": _API_VERSION,
            "kind": _KIND,
            "metadata": _METADATA,
            "spec": "networking.v1.IngressSpec spec is the desired state of the Ingress.",
            "status": "networking.v1.IngressStatus status is the current state of the Ingress.",
        },
        gvk=("networking.k8s.io", "v1", "Ingress"),
    ),
    "networking.v1.IngressClassParametersReference": ObjectSchema(
        "IngressClassParametersReference identifies an API object.",
        {
            "apiGroup": "string apiGroup is the group for the resource being referenced.",
            "kind": "string! kind is the type of resource being referenced.",
            "name": "string! name is the name of resource being referenced.",
            "namespace": "string namespace is the namespace of the resource being referenced.",
            "scope": (
                "string scope represents if this refers to a cluster or namespace scoped resource."
            ),
        },
    ),
    "networking.v1.IngressClassSpec": ObjectSchema(
        "IngressClassSpec provides information about the class of an Ingress.",
        {
            "controller": (
                "string controller refers to the name of the controller that should handle "
                "this class."
            ),
            "parameters": (
                "networking.v1.IngressClassParametersReference parameters is a link to a "
                "custom resource containing additional configuration for the controller."
            ),
        },
    ),
    "networking.v1.IngressClass": ObjectSchema(
        "IngressClass represents the class of the Ingress, referenced by the Ingress Spec.",
        {
            "apiVersion": _API_VERSION,
            "kind": _KIND,
            "metadata": _METADATA,
            "spec": "networking.v1.IngressClassSpec spec is the desired state of the IngressClass.",
        },
        gvk=("networking.k8s.io", "v1", "IngressClass"),
    ),
    "core.v1.NamespaceSpec": ObjectSchema(
        "NamespaceSpec describes the attributes on a Namespace.",
        {
            "finalizers": (
                "[]string Finalizers is an opaque list of values that must be empty to "
                "permanently remove object from storage."
            ),
        },
    ),
    "core.v1.NamespaceCondition": ObjectSchema(
        "NamespaceCondition contains details about state of namespace.",
        {
            "lastTransitionTime": (
                "meta.v1.Time Last time the condition transitioned from one status to another."
            ),
            "message": "string Human-readable message indicating details about last transition.",
            "reason": (
                "string Unique, one-word, CamelCase reason for the condition's last transition."
            ),
            "status": "string! Status of the condition, one of True, False, Unknown.",
            "type": "string! Type of namespace controller condition.",
        },
    ),
    "core.v1.NamespaceStatus": ObjectSchema(
        "NamespaceStatus is information about the current status of a Namespace.",
        {
            "conditions": (
                "[]core.v1.NamespaceCondition Represents the latest available observations of"
                " a namespace's current state."
            ),
            "phase": "string Phase is the current lifecycle phase of the namespace.",
        },
    ),
    "core.v1.Namespace": ObjectSchema(
        "Namespace provides a scope for Names.",
        {
            "apiVersion": _API_VERSION,
            "kind": _KIND,
            "metadata": _METADATA,
            "spec": "core.v1.NamespaceSpec Spec defines the behavior of the Namespace.",
            "status": "core.v1.NamespaceStatus Status describes the current status of a Namespace.",
        },
        gvk=("", "v1", "Namespace"),
    ),
    "meta.v1.MicroTime": Primitive(
        "string:date-time", "MicroTime is version of Time with microsecond level precision."
    ),
    "core.v1.EventSeries": ObjectSchema(
        "EventSeries contain information on series of events, i.e. thing that was/is "
        "happening continuously for some time.",
        {
            "count": (
                "integer:int32 Number of occurrences in this series up to the last heartbeat time"
            ),
            "lastObservedTime": "meta.v1.MicroTime Time of the last occurrence observed",
        },
    ),
    "core.v1.EventSource": ObjectSchema(
        "EventSource contains information for an event.",
        {
            "component": "string Component from which the event is generated.",
            "host": "string Node name on which the event is generated.",
        },
    ),
    "core.v1.Event": ObjectSchema(
        "Event is a report of an event somewhere in the cluster.",
        {
            "action": "string What action was taken/failed regarding to the Regarding object.",
            "apiVersion": _API_VERSION,
            "count": "integer:int32 The number of times this event has occurred.",
            "eventTime": "meta.v1.MicroTime Time when this Event was first observed.",
            "firstTimestamp": (
                "meta.v1.Time The time at which the event was first recorded. (Time of server"
                " receipt is in TypeMeta.)"
            ),
            "involvedObject": "core.v1.ObjectReference! The object that this event is about.",
            "kind": _KIND,
            "lastTimestamp": (
                "meta.v1.Time The time at which the most recent occurrence of this event was "
                "recorded."
            ),
            "message": "string A human-readable description of the status of this operation.",
            "metadata": "meta.v1.ObjectMeta! Standard object's metadata.",
            "reason": (
                "string This should be a short, machine understandable string that gives the "
                "reason for the transition into the object's current status."
            ),
            "related": (
                "core.v1.ObjectReference Optional secondary object for more complex actions."
            ),
            "reportingComponent": (
                "string Name of the controller that emitted this Event, e.g. "
                "`kubernetes.io/kubelet`."
            ),
            "reportingInstance": "string ID of the controller instance, e.g. `kubelet-xyzf`.",
            "series": (
                "core.v1.EventSeries Data about the Event series this event represents or nil"
                " if it's a singleton Event."
            ),
            "source": "core.v1.EventSource The component reporting this event.",
            "type": (
                "string Type of this event (Normal, Warning), new types could be added in the"
                " future"
            ),
        },
        gvk=("", "v1", "Event"),
    ),
    "events.v1.EventSeries": ObjectSchema(
        "EventSeries contain information on series of events, i.e. thing that was/is "
        "happening continuously for some time.",
        {
            "count": (
                "integer:int32! count is the number of occurrences in this series up to the "
                "last heartbeat time."
            ),
            "lastObservedTime": (
                "meta.v1.MicroTime! lastObservedTime is the time when last Event from the "
                "series was seen before last heartbeat."
            ),
        },
    ),
    "events.v1.Event": ObjectSchema(
        "Event is a report of an event somewhere in the cluster.",
        {
            "action": (
                "string action is what action was taken/failed regarding to the regarding object."
            ),
            "apiVersion": _API_VERSION,
            "deprecatedCount": (
                "integer:int32 deprecatedCount is the deprecated field assuring backward "
                "compatibility with core.v1 Event type."
            ),
            "deprecatedFirstTimestamp": (
                "meta.v1.Time deprecatedFirstTimestamp is the deprecated field assuring "
                "backward compatibility with core.v1 Event type."
            ),
            "deprecatedLastTimestamp": (
                "meta.v1.Time deprecatedLastTimestamp is the deprecated field assuring "
                "backward compatibility with core.v1 Event type."
            ),
            "deprecatedSource": (
                "core.v1.EventSource deprecatedSource is the deprecated field assuring "
                "backward compatibility with core.v1 Event type."
            ),
            "eventTime": (
                "meta.v1.MicroTime! eventTime is the time when this Event was first observed."
            ),
            "kind": _KIND,
            "metadata": _METADATA,
            "note": "string note is a human-readable description of the status of this operation.",
            "reason": "string reason is why the action was taken.",
            "regarding": (
                "core.v1.ObjectReference regarding contains the object this Event is about."
            ),
            "related": (
                "core.v1.ObjectReference related is the optional secondary object for more "
                "complex actions."
            ),
            "reportingController": (
                "string reportingController is the name of the controller that emitted this "
                "Event, e.g. `kubernetes.io/kubelet`."
            ),
            "reportingInstance": (
                "string reportingInstance is the ID of the controller instance, e.g. "
                "`kubelet-xyzf`."
            ),
            "series": (
                "events.v1.EventSeries series is data about the Event series this event "
                "represents or nil if it's a singleton Event."
            ),
            "type": (
                "string type is the type of this event (Normal, Warning), new types could be "
                "added in the future."
            ),
        },
        gvk=("events.k8s.io", "v1", "Event"),
    ),
    "coordination.v1.LeaseSpec": ObjectSchema(
        "LeaseSpec is a specification of a Lease.",
        {
            "acquireTime": (
                "meta.v1.MicroTime acquireTime is a time when the current lease was acquired."
            ),
            "holderIdentity": (
                "string holderIdentity contains the identity of the holder of a current lease."
            ),
            "leaseDurationSeconds": (
                "integer:int32 leaseDurationSeconds is a duration that candidates for a lease"
                " need to wait to force acquire it."
            ),
            "leaseTransitions": (
                "integer:int32 leaseTransitions is the number of transitions of a lease "
                "between holders."
            ),
            "preferredHolder": (
                "string PreferredHolder signals to a lease holder that the lease has a more "
                "optimal holder and should be given up."
            ),
            "renewTime": (
                "meta.v1.MicroTime renewTime is a time when the current holder of a lease has"
                " last updated the lease."
            ),
            "strategy": (
                "string Strategy indicates the strategy for picking the leader for "
                "coordinated leader election."
            ),
        },
    ),
    "coordination.v1.Lease": ObjectSchema(
        "Lease defines a lease concept.",
        {
            "apiVersion": _API_VERSION,
            "kind": _KIND,
            "metadata": _METADATA,
            "spec": "coordination.v1.LeaseSpec spec contains the specification of the Lease.",
        },
        gvk=("coordination.k8s.io", "v1", "Lease"),
    ),
}
