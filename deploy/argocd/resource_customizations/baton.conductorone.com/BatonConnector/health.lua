-- Argo CD health for baton.conductorone.com/BatonConnector.
--
-- It reads the same contract as kstatus (Flux, `kubectl wait`): status.observedGeneration and the
-- Ready, Reconciling and Stalled conditions, so Argo CD and Flux agree on a resource. The order of
-- the checks matters; deploy/argocd/README.md explains each state.
--
-- Scripts installed through argocd-cm run without Lua's standard libraries (no string, no math), so
-- this uses only the base and table libraries. Any runtime error would show the resource as Unknown,
-- hence the type checks on every field.

-- Ready=False reasons that waiting will not fix: a person has to act, so Degraded, not Progressing.
local HARD_REASONS = {
  SecretKeyMissing = true,
  SecretKeyEmpty = true,
  OwnershipConflict = true,
  InvalidSpec = true,
  ConfigInvalid = true,
  ProgressDeadlineExceeded = true,
  Unauthorized = true,
  Forbidden = true,
  InvalidCredentials = true,
  SyncFailed = true,
  SyncStale = true,
  ImagePullBackOff = true,
  CreateContainerConfigError = true,
  CrashLoopBackOff = true,
  OOMKilled = true,
  TenantNotAllowed = true,
}

local function table_or_empty(value)
  if type(value) == "table" then
    return value
  end
  return {}
end

-- Argo CD passes integers as numbers, but an object decoded with json.Number carries strings.
local function as_number(value)
  if type(value) == "number" then
    return value
  end
  if type(value) == "string" then
    return tonumber(value)
  end
  return nil
end

local function find_condition(conditions, wanted)
  for _, c in ipairs(conditions) do
    if type(c) == "table" and c.type == wanted then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local function message_of(c, fallback)
  if c ~= nil then
    if type(c.message) == "string" and c.message ~= "" then
      return c.message
    end
    if type(c.reason) == "string" and c.reason ~= "" then
      return c.reason
    end
  end
  return fallback
end

local metadata = table_or_empty(obj.metadata)
local spec = table_or_empty(obj.spec)
local status = obj.status
local conditions = {}
if type(status) == "table" then
  conditions = table_or_empty(status.conditions)
end

if metadata.deletionTimestamp ~= nil then
  local message = "Pending deletion"
  if type(metadata.finalizers) == "table" and #metadata.finalizers > 0 then
    message = message .. "; blocked by finalizers: " .. table.concat(metadata.finalizers, ", ")
  end
  return { status = "Progressing", message = message }
end

-- Before the generation check: setting spec.suspend bumps the generation, and what the user asked
-- for is clear before the operator confirms it.
if spec.suspend == true then
  local suspended = find_condition(conditions, "Suspended")
  local fallback = "Suspended: the operator changes nothing until spec.suspend is false"
  if is_true(suspended) then
    return { status = "Suspended", message = message_of(suspended, fallback) }
  end
  return { status = "Suspended", message = fallback }
end

-- Conditions written for an older generation describe a spec that no longer exists. The CRD defaults
-- observedGeneration to -1, so a resource the operator has not seen yet lands here too.
local generation = as_number(metadata.generation)
local observed = nil
if type(status) == "table" then
  observed = as_number(status.observedGeneration)
end
if observed == nil or generation == nil or observed ~= generation then
  local message = "Waiting for the operator to observe this resource"
  if generation ~= nil then
    message = "Waiting for the operator to observe generation " .. tostring(generation)
  end
  return { status = "Progressing", message = message }
end

local stalled = find_condition(conditions, "Stalled")
if is_true(stalled) then
  return { status = "Degraded", message = message_of(stalled, "Stalled") }
end

local ready = find_condition(conditions, "Ready")
if is_true(ready) then
  return { status = "Healthy", message = message_of(ready, "Ready") }
end

local reconciling = find_condition(conditions, "Reconciling")
if is_true(reconciling) then
  return { status = "Progressing", message = message_of(reconciling, "Reconciling") }
end

local hard = ready ~= nil and type(ready.reason) == "string" and HARD_REASONS[ready.reason] == true
if hard and ready.status == "False" then
  return { status = "Degraded", message = message_of(ready, ready.reason) }
end

return { status = "Progressing", message = message_of(ready, "Waiting for the operator to report readiness") }
