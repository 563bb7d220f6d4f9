"""The compact schemas of the named API groups' kinds: discovery, networking, events, coordination.

EndpointSlice, Ingress, IngressClass, the events.k8s.io Event and Lease, with the definitions of
their own groups; what they reach in core v1 and meta v1 lives in `apiserver_schemas_core`.
Data only, in `apiserver_schema_notation`'s notation; `apiserver_schemas` joins the parts, and
tests/testapi/test_apiserver_openapi.py checks every entry against the Kubernetes 1.32
definitions.
"""

from __future__ import annotations

from controlplane.testing.apiserver_schema_notation import (
    API_VERSION_FIELD,
    KIND_FIELD,
    METADATA_FIELD,
    ObjectSchema,
    Primitive,
)

__all__ = ["GROUP_SCHEMAS"]

GROUP_SCHEMAS: dict[str, Primitive | ObjectSchema] = {
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
            "apiVersion": API_VERSION_FIELD,
            "endpoints": (
                "[]discovery.v1.Endpoint! endpoints is a list of unique endpoints in this slice."
            ),
            "kind": KIND_FIELD,
            "metadata": METADATA_FIELD,
            "ports": (
                "[]discovery.v1.EndpointPort ports specifies the list of network ports "
                "exposed by each endpoint in this slice."
            ),
        },
        gvk=("discovery.k8s.io", "v1", "EndpointSlice"),
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
            "apiVersion": API_VERSION_FIELD,
            "kind": KIND_FIELD,
            "metadata": METADATA_FIELD,
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
            "apiVersion": API_VERSION_FIELD,
            "kind": KIND_FIELD,
            "metadata": METADATA_FIELD,
            "spec": "networking.v1.IngressClassSpec spec is the desired state of the IngressClass.",
        },
        gvk=("networking.k8s.io", "v1", "IngressClass"),
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
            "apiVersion": API_VERSION_FIELD,
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
            "kind": KIND_FIELD,
            "metadata": METADATA_FIELD,
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
            "apiVersion": API_VERSION_FIELD,
            "kind": KIND_FIELD,
            "metadata": METADATA_FIELD,
            "spec": "coordination.v1.LeaseSpec spec contains the specification of the Lease.",
        },
        gvk=("coordination.k8s.io", "v1", "Lease"),
    ),
}
