#!/usr/bin/env bash
# deploy/kubernetes/generate.sh: the parts of the Kubernetes manifests that
# exist once per service, made from services/list (the one place a service
# is named): for each service a Deployment (its pool on TCP 9000, probes on
# GET /api/<svc>/health, the pods hardened and spread over the nodes), a
# Service, a HorizontalPodAutoscaler and a PodDisruptionBudget; the
# migrations Job (pl-migrate for every service, hardened the same way);
# and nginx's upstream settings (PL_UPSTREAM_<SVC>=<svc>:9000, read by the
# same renderer as everywhere else, nginx/render.sh).
#
#   deploy/kubernetes/generate.sh           writes base/generated.yaml and
#                                           base/nginx-upstreams.env
#   deploy/kubernetes/generate.sh --check   exits 1 when they are not what
#                                           the list makes (./pilotlight test)
#
# What only one service has is a patch in base/ (accounts holds the token
# signing key: base/accounts-signing-key.yaml), not a case here.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
root=$(cd -- "$here/../.." && pwd -P)
list=$root/services/list

die() { printf 'generate.sh: %s\n' "$*" >&2; exit 1; }

# labels SVC INDENT: the labels every object of SVC carries (and selects on).
labels() {
  printf '%*sapp.kubernetes.io/name: %s\n%*sapp.kubernetes.io/part-of: pilotlight\n' "$2" '' "$1" "$2" ''
}

# pod_security INDENT: the pod-level securityContext of the service image's
# pods (the pools and the Job): its user pilotlight (uid and gid 10001),
# never root, the runtime's default seccomp profile.
pod_security() {
  sed "s/^/$(printf '%*s' "$1" '')/" <<'YAML'
securityContext:
  runAsNonRoot: true
  runAsUser: 10001 # pilotlight in the image
  runAsGroup: 10001
  fsGroup: 10001 # reads the secret files (mode 0440)
  seccompProfile: {type: RuntimeDefault}
YAML
}

# container_security INDENT: the container-level securityContext of the
# service image's containers: no privilege escalation, no capability, and a
# read-only root: a pool and pl-migrate write no file (their logs go to
# stderr, their pool's socket is TCP); a pool's one writable volume is the
# emptyDir of its master's status socket (docs/kubernetes.md: how that was
# checked).
container_security() {
  sed "s/^/$(printf '%*s' "$1" '')/" <<'YAML'
securityContext:
  allowPrivilegeEscalation: false
  capabilities: {drop: [ALL]}
  readOnlyRootFilesystem: true
YAML
}

# service_objects SVC: its Deployment, Service, HPA and PDB.
service_objects() {
  local svc=$1
  cat <<EOF
# ---- $svc ----
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $svc
  labels:
$(labels "$svc" 4)
spec:
  # no replicas: the HorizontalPodAutoscaler below owns them (a value here
  # would be put back by every apply)
  selector:
    matchLabels:
$(labels "$svc" 6)
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels:
$(labels "$svc" 8)
        app.kubernetes.io/component: service-pool # (network-policies.yaml)
    spec:
      automountServiceAccountToken: false # a pool calls no Kubernetes API
$(pod_security 6)
      # the pods on as many nodes as there are (a node's loss or drain takes
      # one, not all); soft: on fewer nodes they still run
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
$(labels "$svc" 14)
      # preStop's wait, then SIGTERM: in-flight requests finish (PL_SHUTDOWN_TIMEOUT_MS, 10 s)
      terminationGracePeriodSeconds: 20
      # a release's new pods start only once its pl-migrate Job has applied
      # every migration of this image (pl-migrate --check, as the service's
      # own user, every 2 s); after PL_MIGRATIONS_WAIT_S (300 s) it fails,
      # the kubelet runs it again after a back-off, and the rollout waits at
      # this pod while the old ones serve on
      initContainers:
        - name: wait-migrations
          image: pilotlight/service:latest
          command: [/usr/local/bin/wait-migrations.sh]
          env:
            - {name: PL_SERVICE, value: $svc}
          envFrom:
            - configMapRef: {name: pilotlight-services}
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {memory: 64Mi}
$(container_security 10)
          volumeMounts:
            - {name: secrets, mountPath: /run/pilotlight/secrets, readOnly: true}
      containers:
        - name: $svc
          image: pilotlight/service:latest
          env:
            - {name: PL_SERVICE, value: $svc}
            # the master answers _status itself here, from the scoreboard:
            # the liveness probe's socket (a worker may all be busy)
            - {name: PL_STATUS_LISTEN, value: "unix:/run/pilotlight/status/status.sock"}
          envFrom:
            - configMapRef: {name: pilotlight-services}
          ports:
            - {name: fastcgi, containerPort: 9000}
          # GET /api/$svc/health over FastCGI (the pool speaks no HTTP):
          # ready when the service and its database answer (a worker answers:
          # out of the Service after 3 failures in a row, 15 s, so a pod whose
          # workers are all busy for a moment is not taken out); alive when
          # the pool's master answers GET /api/$svc/_status on its status
          # socket, which waits for no worker and touches no database (busy
          # workers, a slow database or an outage, a hung server included,
          # restart nothing)
          readinessProbe:
            exec: {command: [/usr/local/bin/healthcheck.sh]}
            periodSeconds: 5
            timeoutSeconds: 4
            failureThreshold: 3
          livenessProbe:
            exec: {command: [/usr/local/bin/healthcheck.sh, --live, $svc, /run/pilotlight/status/status.sock]}
            initialDelaySeconds: 5
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          lifecycle:
            # keep serving while the endpoint's removal reaches every node
            preStop:
              exec: {command: [/bin/sleep, "5"]}
          resources:
            requests: {cpu: 100m, memory: 64Mi}
            limits: {memory: 1Gi} # a login's argon2id hash takes 64 MiB per worker
$(container_security 10)
          volumeMounts:
            - {name: secrets, mountPath: /run/pilotlight/secrets, readOnly: true}
            - {name: status, mountPath: /run/pilotlight/status}
      volumes:
        # first: accounts-signing-key.yaml adds to volumes/0's items
        - name: secrets
          secret:
            secretName: pilotlight-secrets
            defaultMode: 288 # 0440
            optional: false # (podman 4.3's kube play crashes on a secret volume without it)
            items:
              - {key: db_$svc.password, path: db_$svc.password}
              - {key: jwt_public.keys, path: jwt_public.keys}
        - {name: status, emptyDir: {sizeLimit: 1Mi}} # the master's status socket
---
apiVersion: v1
kind: Service
metadata:
  name: $svc
  labels:
$(labels "$svc" 4)
spec:
  selector:
$(labels "$svc" 4)
  ports:
    - {name: fastcgi, port: 9000, targetPort: fastcgi}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: $svc
  labels:
$(labels "$svc" 4)
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: $svc}
  minReplicas: 2
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: 70}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: $svc
  labels:
$(labels "$svc" 4)
spec:
  # one pod at a time through a drain, at any scale; at the autoscaler's
  # minimum (2) one keeps serving
  maxUnavailable: 1
  selector:
    matchLabels:
$(labels "$svc" 6)
---
EOF
}

# migrate_job SVC...: pl-migrate for each service (docker/migrate.sh), with
# the database administrator's password and each service's own.
migrate_job() {
  local svc
  cat <<EOF
# ---- the migrations: pl-migrate for every service, once per release ----
# (a Job's template cannot change: delete the finished Job before applying
# a new release's)
apiVersion: batch/v1
kind: Job
metadata:
  name: pl-migrate
  labels:
$(labels pl-migrate 4)
spec:
  backoffLimit: 6 # the database may still be starting
  ttlSecondsAfterFinished: 86400
  template:
    metadata:
      labels:
$(labels pl-migrate 8)
    spec:
      restartPolicy: OnFailure
      automountServiceAccountToken: false
$(pod_security 6)
      containers:
        - name: migrate
          image: pilotlight/service:latest
          command: [/usr/local/bin/migrate.sh]
          envFrom:
            - configMapRef: {name: pilotlight-services}
$(container_security 10)
          volumeMounts:
            - {name: secrets, mountPath: /run/pilotlight/secrets, readOnly: true}
      volumes:
        - name: secrets
          secret:
            secretName: pilotlight-secrets
            defaultMode: 288 # 0440
            optional: false
            items:
              - {key: mysql_root.password, path: mysql_root.password}
EOF
  for svc in "$@"; do
    printf '              - {key: db_%s.password, path: db_%s.password}\n' "$svc" "$svc"
  done
}

# upstreams SVC...: nginx's PL_UPSTREAM_<SVC>, each service's Service.
upstreams() {
  local svc
  printf '# made by deploy/kubernetes/generate.sh from services/list: each service'"'"'s\n'
  printf '# pools behind its Service (kube-proxy spreads the connections)\n'
  for svc in "$@"; do printf 'PL_UPSTREAM_%s=%s:9000\n' "${svc^^}" "$svc"; done
}

tmp=
main() {
  local svc services=() rc=0
  [[ -r $list ]] || die "$list is not readable"
  while IFS= read -r svc || [[ -n $svc ]]; do
    [[ $svc =~ ^[a-z][a-z0-9]{0,30}$ ]] || die "$list: '$svc' is not a service name"
    services+=("$svc")
  done <"$list"
  ((${#services[@]} > 0)) || die "$list names no service"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  {
    printf '# made by deploy/kubernetes/generate.sh from services/list: do not edit,\n'
    printf '# run it again (./pilotlight test checks that this is up to date)\n'
    for svc in "${services[@]}"; do service_objects "$svc"; done
    migrate_job "${services[@]}"
  } >"$tmp/generated.yaml"
  upstreams "${services[@]}" >"$tmp/nginx-upstreams.env"
  if [[ ${1:-} == --check ]]; then
    for f in generated.yaml nginx-upstreams.env; do
      if ! cmp -s "$tmp/$f" "$here/base/$f"; then
        diff -u "$here/base/$f" "$tmp/$f" >&2 || true
        printf 'generate.sh: deploy/kubernetes/base/%s is not what services/list makes: run deploy/kubernetes/generate.sh\n' "$f" >&2
        rc=1
      fi
    done
    return "$rc"
  fi
  [[ -z ${1:-} ]] || die "usage: generate.sh [--check]"
  cp "$tmp/generated.yaml" "$tmp/nginx-upstreams.env" "$here/base/"
  printf 'wrote deploy/kubernetes/base/generated.yaml and nginx-upstreams.env for: %s\n' "${services[*]}"
}

main "$@"
