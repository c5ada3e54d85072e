//! EWS response codes mailgate answers with: only documented names, because
//! exchangelib raises "Unknown ResponseCode" on anything else and retries every
//! schema version on ErrorInvalidRequest (so that one is never used for an
//! operation we do not serve).

macro_rules! codes {
    ($($name:ident),* $(,)?) => {
        /// A documented EWS `ResponseCode`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ResponseCode { $($name),* }

        impl ResponseCode {
            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(ResponseCode::$name => stringify!($name)),* }
            }
        }
    };
}

codes!(
    NoError,
    ErrorAccessDenied,
    ErrorCannotDeleteObject,
    ErrorChangeKeyRequiredForWriteOperations,
    ErrorDeleteDistinguishedFolder,
    ErrorFolderExists,
    ErrorFolderNotFound,
    ErrorImpersonateUserDenied,
    ErrorImpersonationDenied,
    ErrorImpersonationFailed,
    ErrorInternalServerError,
    ErrorInvalidExchangeImpersonationHeaderData,
    ErrorInvalidIdMalformed,
    ErrorInvalidOperation,
    ErrorInvalidPropertyRequest,
    ErrorInvalidPropertySet,
    ErrorInvalidRecipients,
    ErrorInvalidServerVersion,
    ErrorInvalidSyncStateData,
    ErrorIrresolvableConflict,
    ErrorItemNotFound,
    ErrorMailboxStoreUnavailable,
    ErrorMessageSizeExceeded,
    ErrorMissingEmailAddress,
    ErrorMoveCopyFailed,
    ErrorNonExistentMailbox,
    ErrorQuotaExceeded,
    ErrorSchemaValidation,
    ErrorSendAsDenied,
    ErrorServerBusy,
    ErrorStaleObject,
    ErrorNameResolutionNoResults,
    ErrorNameResolutionMultipleResults,
    ErrorCorruptData,
    ErrorInvalidValueForProperty,
    ErrorInvalidChangeKey,
    ErrorObjectTypeChanged,
    ErrorInvalidAttachmentId,
    ErrorInvalidExtendedProperty,
    ErrorInvalidExtendedPropertyValue,
    ErrorInvalidSubscription,
    ErrorInvalidSubscriptionRequest,
    ErrorInvalidWatermark,
    ErrorSubscriptionNotFound,
    ErrorExceededSubscriptionCount,
);
