"""The contract's words (Appendix A), shared by every domain.

They live below the domain packages because callbacks, vehicles, remotes and notifications all
speak them; the wire protocol to vehicles has its own vocabulary in ``dispatch.protocol``.
"""

from __future__ import annotations

from enum import StrEnum


class RemoteType(StrEnum):
    THERMAL_PRECONDITIONING = "ThermalPreconditioning"
    ELECTRIC_BATTERY_CHARGING_REQUEST = "ElectricBatteryChargingRequest"
    HORN = "Horn"
    DOORS = "Doors"
    LIGHTS = "Lights"
    IMMOBILIZATION = "Immobilization"
    STOLEN = "Stolen"
    WAKE_UP = "WakeUp"
    NAVIGATION = "Navigation"


class CallbackStatus(StrEnum):
    RUNNING = "Running"
    PAUSED = "Paused"
    FAILED = "Failed"


class EventType(StrEnum):
    PENDING = "Pending"
    DONE = "Done"


class PendingStatus(StrEnum):
    ACCEPTED = "Accepted"
    WAKING_UP_VEHICLE = "WakingUpVehicle"
    CHECKING_VEHICLE = "CheckingVehicle"
    SENT_TO_VEHICLE = "SentToVehicle"
    VEHICLE_BATTERY_CHARGE_TOO_LOW = "VehicleBatteryChargeTooLow"
    TOO_MANY_WAKE_UPS_OVER_MONTH = "TooManyWakeUpsOverMonth"


class DoneStatus(StrEnum):
    SUCCESS = "Success"
    ALREADY_DONE = "AlreadyDone"
    FAILED = "Failed"


class FailureCause(StrEnum):
    GENERAL_ERROR = "GeneralError"
    VEHICLE_ERROR = "VehicleError"
    WRONG_COMMAND = "WrongCommand"
    VEHICLE_CONNECTION_TIMEOUT = "VehicleConnectionTimeout"
    MISSING_RIGHTS = "MissingRights"
    NOT_POSSIBLE_DUE_TO_VEHICLE_BATTERY_LEVEL = "NotPossibleDueToVehicleBatteryLevel"
    NOT_POSSIBLE_DUE_TO_VEHICLE_PRIVACY_LEVEL = "NotPossibleDueToVehiclePrivacyLevel"
    TOO_MANY_WAKE_UPS_OVER_MONTH = "TooManyWakeUpsOverMonth"
    TOO_MANY_REQUEST_IN_SHORT_TIME = "TooManyRequestInShortTime"
    SAME_ACTION_IN_PROGRESS = "SameActionInProgress"
    NOT_POSSIBLE_DUE_TO_VEHICLE_STOLEN_STATE = "NotPossibleDueToVehicleStolenState"
    VEHICLE_IN_USE = "VehicleInUse"
    TOO_MANY_REQUEST_SENT = "TooManyRequestSent"
    DOORS_OPEN = "DoorsOpen"
    VEHICLE_ERROR_OR_CID_INSIDE = "VehicleErrorOrCidInside"
    CID_INSIDE = "CidInside"
    EXTERNAL_CHARGING_SYSTEM_ERROR = "ExternalChargingSystemError"
    VEHICLE_CHARGING_SYSTEM_ERROR = "VehicleChargingSystemError"
    VEHICLE_IS_NOT_LOCKED = "VehicleIsNotLocked"
    CANCELED_BY_DRIVER = "CanceledByDriver"


class FeedbackDetail(StrEnum):
    NO_CID_BLACKLISTED = "NoCIDBlacklisted"
    CID_BLACKLISTED = "CIDBlacklisted"


class Motorization(StrEnum):
    ELECTRIC = "Electric"
    HYBRID = "Hybrid"
    THERMIC = "Thermic"
    HYDROGEN = "Hydrogen"
