-- Argo CD health for baton.conductorone.com/ConductorOneTenant and ClusterConductorOneTenant (the
-- two files are the same script).
--
-- It reads what kstatus reads: status.observedGeneration and the Ready condition, plus the InUse
-- condition a deleted tenant carries while connectors still use it. deploy/argocd/README.md explains
-- each state. Scripts installed through argocd-cm run without Lua's standard libraries (no string, no
-- math), so this uses only the base and table libraries, and checks the type of every field.

-- Ready=False reasons that waiting will not fix: the principal was refused, or its Secret is missing
-- or incomplete. Every connector of the tenant waits on it (TenantNotReady), so a person must act.
-- Unreachable and RateLimited are retried by the operator: Progressing.
local HARD_REASONS = {
  CredentialsRejected = true,
  SecretNotFound = true,
  SecretKeyMissing = true,
  SecretKeyEmpty = true,
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
local status = obj.status
local conditions = {}
if type(status) == "table" then
  conditions = table_or_empty(status.conditions)
end

-- Deleted: the tenant's finalizer holds it while connectors still need its principal to revoke their
-- credentials. That ends by itself once they are gone or moved, so Progressing.
if metadata.deletionTimestamp ~= nil then
  local in_use = find_condition(conditions, "InUse")
  if in_use ~= nil and in_use.status == "True" then
    return { status = "Progressing", message = "Pending deletion: " .. message_of(in_use, "connectors still use this tenant") }
  end
  local message = "Pending deletion"
  if type(metadata.finalizers) == "table" and #metadata.finalizers > 0 then
    message = message .. "; blocked by finalizers: " .. table.concat(metadata.finalizers, ", ")
  end
  return { status = "Progressing", message = message }
end

-- A status written for an older generation describes a spec that no longer exists.
local generation = as_number(metadata.generation)
local observed = nil
if type(status) == "table" then
  observed = as_number(status.observedGeneration)
end
if observed == nil or generation == nil or observed ~= generation then
  local message = "Waiting for the operator to check this tenant"
  if generation ~= nil then
    message = "Waiting for the operator to check generation " .. tostring(generation)
  end
  return { status = "Progressing", message = message }
end

local ready = find_condition(conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  return { status = "Healthy", message = message_of(ready, "Ready") }
end

local hard = ready ~= nil and type(ready.reason) == "string" and HARD_REASONS[ready.reason] == true
if hard and ready.status == "False" then
  return { status = "Degraded", message = message_of(ready, ready.reason) }
end

return { status = "Progressing", message = message_of(ready, "Waiting for the operator to report readiness") }
